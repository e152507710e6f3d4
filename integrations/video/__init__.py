"""One interface for every video platform; the app picks implementations from its configuration.

Integrations take and return these plain dataclasses; they know nothing of Flask or the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Protocol


class ApprovalType(IntEnum):
    """Zoom's `settings.approval_type` of a meeting or webinar."""

    AUTOMATIC = 0
    MANUAL = 1
    NO_REGISTRATION = 2


@dataclass(frozen=True)
class MeetingRef:
    meeting_id: str
    kind: str = "meeting"  # "meeting" or "webinar"


@dataclass(frozen=True)
class MeetingInfo:
    meeting_id: str
    kind: str
    topic: str
    approval_type: ApprovalType
    join_url: str | None = None
    registration_url: str | None = None
    host_id: str | None = None  # the platform user who hosts it

    @property
    def registration_enabled(self) -> bool:
        return self.approval_type != ApprovalType.NO_REGISTRATION


@dataclass(frozen=True)
class VideoUser:
    """A user of the platform account: the id a meeting's `host_id` names, and the user's email when known."""

    user_id: str
    email: str | None = None


@dataclass(frozen=True)
class NewMeeting:
    topic: str
    starts_at: datetime
    duration_minutes: int
    timezone: str
    agenda: str = ""


@dataclass(frozen=True)
class Attendee:
    email: str
    first_name: str
    last_name: str = ""

    @classmethod
    def from_name(cls, email: str, name: str) -> Attendee:
        first, _sep, last = name.strip().partition(" ")
        return cls(email=email, first_name=first or email, last_name=last.strip())


@dataclass(frozen=True)
class Registration:
    registrant_id: str
    join_url: str


@dataclass(frozen=True)
class Participant:
    email: str | None
    registrant_id: str | None
    name: str | None = None
    joined_at: datetime | None = None


@dataclass(frozen=True)
class VideoEvent:
    """A verified platform webhook in our words. `event_id` is stable across redeliveries of one event."""

    event_id: str
    type: str
    meeting_id: str | None
    occurrence_uuid: str | None = None  # one per occurrence (instance) of a meeting, which keeps its id throughout
    started_at: datetime | None = None
    ended_at: datetime | None = None
    participant: Participant | None = None
    raw: Mapping = field(default_factory=dict, repr=False)


class VideoError(Exception):
    """The platform refused or could not be reached. `transient` errors are worth retrying, not before
    `retry_after` seconds when the platform said so."""

    def __init__(self, message: str, *, transient: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after


class VideoConfigurationError(VideoError):
    """Something the creator or the operator must change (credentials, meeting id, registration settings)."""

    def __init__(self, message: str, *, code: int | None = None, status: int | None = None):
        super().__init__(message, transient=False)
        self.code = code
        self.status = status


class MeetingNotFound(VideoConfigurationError):
    pass


class RegistrationNotEnabled(VideoConfigurationError):
    pass


class UserNotFound(VideoConfigurationError):
    pass


class VideoWebhookError(Exception):
    """A webhook whose signature or timestamp does not hold: refuse it, change nothing."""


class VideoPlatform(Protocol):
    name: str

    def get_meeting(self, ref: MeetingRef) -> MeetingInfo:
        """The meeting or webinar as the platform has it; raises MeetingNotFound."""

    def create_meeting(self, meeting: NewMeeting) -> MeetingInfo:
        """Schedule a meeting that requires registration with manual approval."""

    def get_user(self, user: str) -> VideoUser:
        """A user of the account, by id or email; raises UserNotFound."""

    def add_registrant(self, ref: MeetingRef, attendee: Attendee) -> Registration:
        """Register and approve one attendee; returns their personal join URL."""

    def cancel_registrant(self, ref: MeetingRef, registrant_id: str, email: str) -> None:
        """Take a registrant's access away (their personal join URL stops working); `email` may be empty (an
        attendee whose data was erased): the registrant id alone identifies them."""
