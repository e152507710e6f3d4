"""Demo mode's stand-in for Zoom: every meeting exists, registration is immediate, the join URL is a local page."""

from __future__ import annotations

import hashlib

from . import ApprovalType, Attendee, MeetingInfo, MeetingRef, NewMeeting, Registration


class DemoPlatform:
    name = "demo"

    def __init__(self, room_url: str) -> None:
        self._room_url = room_url.rstrip("/")

    def get_meeting(self, ref: MeetingRef) -> MeetingInfo:
        return MeetingInfo(ref.meeting_id, ref.kind, "Demo meeting", ApprovalType.MANUAL)

    def create_meeting(self, meeting: NewMeeting) -> MeetingInfo:
        meeting_id = str(int(hashlib.sha256(meeting.topic.encode()).hexdigest(), 16))[:11]
        return MeetingInfo(meeting_id, "meeting", meeting.topic, ApprovalType.MANUAL)

    def add_registrant(self, ref: MeetingRef, attendee: Attendee) -> Registration:
        registrant_id = "demo-" + hashlib.sha256(f"{ref.meeting_id}:{attendee.email}".encode()).hexdigest()[:16]
        return Registration(registrant_id=registrant_id, join_url=f"{self._room_url}/{registrant_id}")

    def cancel_registrant(self, ref: MeetingRef, registrant_id: str, email: str) -> None:
        return None
