"""iCalendar invitations (RFC 5545): one event per order, so the attendee's calendar shows their local time.

The UID is stable per order; SEQUENCE grows with every change, and METHOD:CANCEL with the same UID
removes the event, so calendars update the entry they already have instead of adding a second one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode


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


@dataclass(frozen=True)
class CalendarLinks:
    """Add-to-calendar links for the web calendars that take an event in their address."""

    google: str
    outlook: str


def calendar_links(title: str, starts_at: datetime, ends_at: datetime, details: str, location: str) -> CalendarLinks:
    """Links that open Google Calendar and Outlook on the web with the event filled in (times in UTC)."""
    google = "https://calendar.google.com/calendar/render?" + urlencode(
        {
            "action": "TEMPLATE",
            "text": title,
            "dates": f"{_stamp(starts_at)}/{_stamp(ends_at)}",
            "details": details,
            "location": location,
        }
    )
    iso = "%Y-%m-%dT%H:%M:%SZ"
    outlook = "https://outlook.live.com/calendar/0/action/compose?" + urlencode(
        {
            "rru": "addevent",
            "subject": title,
            "startdt": starts_at.astimezone(UTC).strftime(iso),
            "enddt": ends_at.astimezone(UTC).strftime(iso),
            "body": details,
            "location": location,
        }
    )
    return CalendarLinks(google=google, outlook=outlook)
