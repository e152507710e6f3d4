"""iCalendar invitations (RFC 5545): one event per order, so the attendee's calendar shows their local time.

The UID is stable per order; SEQUENCE grows with every change, and METHOD:CANCEL with the same UID
removes the event, so calendars update the entry they already have instead of adding a second one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class Invitation:
    uid: str
    sequence: int
    starts_at: datetime
    ends_at: datetime
    summary: str
    description: str
    url: str
    organizer_name: str
    organizer_email: str
    attendee_name: str
    attendee_email: str
    cancelled: bool = False


def _escape(text: str) -> str:
    return (
        text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\r\n", "\\n").replace("\n", "\\n")
    )


def _param(text: str) -> str:
    """A parameter value (CN=...): quoted, with the characters a quoted value cannot hold removed."""
    return '"' + text.replace('"', "'").replace("\r", " ").replace("\n", " ") + '"'


def _fold(line: str) -> str:
    """Lines longer than 75 octets continue on the next line after a space, never splitting a character."""
    out, current, size = [], "", 0
    for char in line:
        width = len(char.encode())
        if size + width > 75:
            out.append(current)
            current, size = " ", 1
        current += char
        size += width
    out.append(current)
    return "\r\n".join(out)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def build_ics(invitation: Invitation, now: datetime) -> str:
    method = "CANCEL" if invitation.cancelled else "REQUEST"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//webinar_pay//sessions//EN",
        "CALSCALE:GREGORIAN",
        f"METHOD:{method}",
        "BEGIN:VEVENT",
        f"UID:{invitation.uid}",
        f"SEQUENCE:{invitation.sequence}",
        f"DTSTAMP:{_stamp(now)}",
        f"DTSTART:{_stamp(invitation.starts_at)}",
        f"DTEND:{_stamp(invitation.ends_at)}",
        f"SUMMARY:{_escape(invitation.summary)}",
        f"DESCRIPTION:{_escape(invitation.description)}",
        f"URL:{invitation.url}",
        f"LOCATION:{_escape(invitation.url)}",
        f"ORGANIZER;CN={_param(invitation.organizer_name)}:mailto:{invitation.organizer_email}",
        f"ATTENDEE;CN={_param(invitation.attendee_name)};ROLE=REQ-PARTICIPANT;RSVP=FALSE:"
        f"mailto:{invitation.attendee_email}",
        f"STATUS:{'CANCELLED' if invitation.cancelled else 'CONFIRMED'}",
        "TRANSP:OPAQUE",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(_fold(line) for line in lines) + "\r\n"
