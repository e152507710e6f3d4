"""Demo mode's stand-in for Zoom: every meeting exists, registration is immediate, the join URL is a local page.

It has no hosts: who may use which meeting ID is only the app's own record (the first creator to publish it).
"""

from __future__ import annotations

import hashlib
import secrets

from . import ApprovalType, Attendee, MeetingInfo, MeetingRef, NewMeeting, Registration, UserNotFound, VideoUser


class DemoPlatform:
    name = "demo"

    def __init__(self, room_url: str) -> None:
        self._room_url = room_url.rstrip("/")

    def get_meeting(self, ref: MeetingRef) -> MeetingInfo:
        return MeetingInfo(ref.meeting_id, ref.kind, "Demo meeting", ApprovalType.MANUAL)

    def create_meeting(self, meeting: NewMeeting) -> MeetingInfo:
        meeting_id = str(10**10 + secrets.randbelow(9 * 10**10))  # a fresh ID, as Zoom gives
        return MeetingInfo(meeting_id, "meeting", meeting.topic, ApprovalType.MANUAL)

    def get_user(self, user: str) -> VideoUser:
        """Any address is a demo user of its own (so linking one's own email works in the demo); ids are not."""
        user = (user or "").strip().lower()
        if "@" not in user:
            raise UserNotFound(f"The demo knows Zoom users by email only: {user!r}")
        return VideoUser(user_id="demo-" + hashlib.sha256(user.encode()).hexdigest()[:16], email=user)

    def add_registrant(self, ref: MeetingRef, attendee: Attendee) -> Registration:
        registrant_id = "demo-" + hashlib.sha256(f"{ref.meeting_id}:{attendee.email}".encode()).hexdigest()[:16]
        return Registration(registrant_id=registrant_id, join_url=f"{self._room_url}/{registrant_id}")

    def cancel_registrant(self, ref: MeetingRef, registrant_id: str, email: str) -> None:
        return None
