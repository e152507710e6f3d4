"""Secrets out of log lines. A ticket or join link (`/t/<order id>.<signature>`, `/j/…`) is all an attendee needs
to see their order, join the session or cancel it: whoever reads the logs must not get them. Every line the app,
Werkzeug's development server or gunicorn writes keeps the order id and loses the signature: `/t/42.[redacted]`.

`RedactTokens` is a logging filter (installed by the app factory); `GunicornLogger` is gunicorn's logger with the
same redaction on its access and error logs (`logger_class` in gunicorn.conf.py).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from gunicorn.glogging import Logger as _GunicornBaseLogger

REDACTED = "[redacted]"

_PATTERNS = (
    # /t/<order id>.<signature>, /j/<token>, also inside full URLs, Referer headers and %-encoded `next=` values
    (re.compile(r"(/[tj]/)(\d+\.)?[^/?#&\s\"'<>\\]+"), rf"\g<1>\g<2>{REDACTED}"),
    (re.compile(r"(%2F[tj]%2F)(\d+\.)?[^%/?#&\s\"'<>\\]+", re.IGNORECASE), rf"\g<1>\g<2>{REDACTED}"),
    # query parameters that carry a token or a meeting password (PayPal's return, Zoom join URLs)
    (re.compile(r"([?&;](?:token|access_token|pwd)=)[^&#\s\"'<>\\]+", re.IGNORECASE), rf"\g<1>{REDACTED}"),
    # creators' API tokens, should one ever reach a log line
    (re.compile(r"\bwp_[A-Za-z0-9_-]{16,}"), f"wp_{REDACTED}"),
)


def redact(text: str) -> str:
    """`text` with every ticket, join and API token replaced; the order id stays, for tracing."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactTokens(logging.Filter):
    """Redacts a record's message, its traceback and its stack: the record is rewritten in place, so every
    handler and formatter after it sees only the redacted text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is the logging module's to report, not ours
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install(targets: Iterable[logging.Logger | logging.Handler]) -> None:
    """Add the filter to loggers (records logged on them) and handlers (every record they write), once."""
    for target in targets:
        if not any(isinstance(existing, RedactTokens) for existing in target.filters):
            target.addFilter(RedactTokens())


class GunicornLogger(_GunicornBaseLogger):
    """gunicorn's logger, redacting the access log (request line, URL, query, Referer, every header atom) and the
    error log (messages and tracebacks)."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        install([self.error_log, self.access_log, *self.error_log.handlers, *self.access_log.handlers])

    def atoms(self, resp, req, environ, request_time) -> dict:
        return {
            name: redact(value) if isinstance(value, str) else value
            for name, value in super().atoms(resp, req, environ, request_time).items()
        }
