"""What an SMTP failure means for the message: try again later, or give up and say so.

No Flask here: the dispatcher sends through Flask-Mail and asks this module how to read its errors.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass


@dataclass(frozen=True)
class SmtpFailure:
    transient: bool
    connection_lost: bool
    reason: str


def classify_smtp_error(error: BaseException) -> SmtpFailure:
    """4xx replies and network trouble are transient; 5xx replies (unknown mailbox, refused sender) are not."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _message in error.recipients.values()]
        detail = "; ".join(f"{rcpt}: {code} {_text(msg)}" for rcpt, (code, msg) in error.recipients.items())
        return SmtpFailure(transient=any(code < 500 for code in codes), connection_lost=False, reason=detail)
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return SmtpFailure(transient=True, connection_lost=True, reason=f"server disconnected: {error}")
    if isinstance(error, smtplib.SMTPResponseException):
        reason = f"{error.smtp_code} {_text(error.smtp_error)}"
        return SmtpFailure(transient=error.smtp_code < 500, connection_lost=error.smtp_code == 421, reason=reason)
    if isinstance(error, OSError | smtplib.SMTPException):
        return SmtpFailure(transient=True, connection_lost=True, reason=f"{type(error).__name__}: {error}")
    raise TypeError(f"not an SMTP error: {error!r}")


def _text(message: bytes | str) -> str:
    return message.decode(errors="replace") if isinstance(message, bytes) else str(message)
