"""IANA time zones: validation, local wall time to UTC, and formatting for people."""

from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


@cache
def all_timezones() -> list[str]:
    return sorted(zone for zone in available_timezones() if "/" in zone or zone == "UTC")


def is_valid_timezone(name: str) -> bool:
    if not name or name not in all_timezones():
        return False
    try:
        ZoneInfo(name)
    except ZoneInfoNotFoundError:
        return False
    return True


class NonexistentLocalTime(ValueError):
    pass


def local_to_utc(local: datetime, zone: str) -> datetime:
    """A wall-clock time in `zone` as UTC. Times skipped by a DST change are refused, not guessed."""
    aware = local.replace(tzinfo=ZoneInfo(zone))
    as_utc = aware.astimezone(UTC)
    if as_utc.astimezone(ZoneInfo(zone)).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise NonexistentLocalTime(f"{local:%Y-%m-%d %H:%M} does not exist in {zone} (clocks change)")
    return as_utc
