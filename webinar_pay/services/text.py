"""Text that comes from outside: one check for every field a person types (names, titles, addresses, links).

PostgreSQL refuses NUL in text, UTF-8 cannot carry a lone surrogate, a column has a length, and a line break in a
name ends up in an email header: each would be a crash or a refused email far from the form that let it in.
"""

from __future__ import annotations

import re
from typing import Any

from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext as _

from ..limits import MAX_EMAIL_LENGTH, MAX_NAME_LENGTH, MAX_URL_LENGTH

# C0 and C1 control characters, DEL and lone surrogates. Text of several lines keeps tab, LF and CR; a one-line
# value refuses them and the Unicode line and paragraph separators too.
_CONTROL = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff"
_BAD_IN_TEXT = re.compile(f"[{_CONTROL}]")
_BAD_IN_LINE = re.compile(f"[{_CONTROL}\t\n\r\u2028\u2029]")
# The same rules as JSON Schema patterns, which the OpenAPI document publishes (JSON cannot spell a lone surrogate).
ONE_LINE_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]*$"
SEVERAL_LINES_PATTERN = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"


class TextError(ValueError):
    """Why a value was refused, as a message for the field it concerns."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def is_clean(value: Any, *, multiline: bool = False) -> bool:
    """Text with no character that `clean_text` refuses (of any length)."""
    return isinstance(value, str) and not (_BAD_IN_TEXT if multiline else _BAD_IN_LINE).search(value)


def clean_text(value: Any, *, max_length: int, multiline: bool = False, required: bool = True) -> str:
    """`value` without its surrounding spaces; raises TextError for what no column, page or email header can hold.

    The length is counted as sent, before trimming, so a client knows the limit from the value it holds.
    """
    if not isinstance(value, str):
        raise TextError(_("Enter text."))
    if len(value) > max_length:
        raise TextError(_("Use at most %(n)d characters.", n=max_length))
    if not is_clean(value, multiline=multiline):
        if multiline:
            raise TextError(_("Remove the control characters (such as NUL) from this text."))
        raise TextError(_("Remove the line breaks and control characters (such as NUL) from this text."))
    value = value.strip()
    if required and not value:
        raise TextError(_("This field is required."))
    return value


# An absolute http(s) URL as RFC 3986 spells it (host names, no IPv6 literal): ASCII only, no space, every `%`
# followed by two hex digits. The OpenAPI document publishes its outline, which is cheaper for schema tools.
_PCHAR = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})"
URL_PATTERN = (
    r"^https?://"
    r"(?:(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*@)?"  # user info
    r"(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+"  # host
    r"(?::[0-9]*)?"  # port
    rf"(?:/{_PCHAR}*)*"  # path
    rf"(?:\?(?:{_PCHAR}|[/?])*)?"  # query
    rf"(?:#(?:{_PCHAR}|[/?])*)?$"  # fragment
)
URL_OUTLINE_PATTERN = "^https?://\\S+$"
_URL = re.compile(URL_PATTERN)


def clean_url(value: Any, *, max_length: int = MAX_URL_LENGTH) -> str:
    """A full http:// or https:// address; raises TextError otherwise."""
    value = clean_text(value, max_length=max_length, required=False)
    if not _URL.fullmatch(value):
        raise TextError(_("Enter a full https:// address."))
    return value


def person_name(value: Any) -> str:
    """A person's name as pages and email headers show it: one line of at most MAX_NAME_LENGTH characters."""
    name = clean_text(value, max_length=MAX_NAME_LENGTH, required=False)
    if not name:
        raise TextError(_("Enter your name."))
    return name


def email_address(value: Any) -> str:
    """An email address, lower-cased as email_validator normalises it (no DNS look-up)."""
    try:
        address = clean_text(value, max_length=MAX_EMAIL_LENGTH)
        return validate_email(address, check_deliverability=False).normalized.lower()
    except (TextError, EmailNotValidError):
        raise TextError(_("Enter a valid email address.")) from None


def status_label(status: str) -> str:
    """Order, session and enrolment states as people read them."""
    labels = {
        "draft": _("draft"),
        "published": _("published"),
        "ended": _("ended"),
        "cancelled": _("cancelled"),
        "pending": _("pending"),
        "paid": _("paid"),
        "refunded": _("refunded"),
        "expired": _("expired"),
        "failed": _("failed"),
        "disputed": _("disputed"),
        "enrolled": _("enrolled"),
        "sending": _("sending"),
        "sent": _("sent"),
        "succeeded": _("succeeded"),
    }
    return labels.get(status, status)
