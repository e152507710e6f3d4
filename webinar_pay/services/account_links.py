"""The links of account emails: a password reset and an address confirmation, signed with SECRET_KEY.

Nothing is stored for them. A reset link names the creator, a fingerprint of their password hash and login email,
and the time it was asked for: it is valid for an hour and only until the password (or the email) changes, which
using it does, so it works once. A confirmation link names the creator and the address it confirms.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer

from ..config import settings
from ..models import Creator, get_by_id
from . import ServiceError

RESET_VALID_FOR = timedelta(hours=1)
CONFIRM_VALID_FOR = timedelta(days=7)
MAX_LINK_TOKEN_LENGTH = 300


class BadLink(ServiceError):
    code = "bad_link"
    http_status = 400


def _serializer(purpose: str) -> URLSafeSerializer:
    return URLSafeSerializer(settings().SECRET_KEY, salt=f"webinar_pay {purpose}")


def _fingerprint(creator: Creator) -> str:
    key = settings().SECRET_KEY.encode()
    material = f"{creator.password_hash}\n{creator.email.lower()}".encode()
    return hmac.new(key, material, hashlib.sha256).hexdigest()[:24]


def reset_token(creator: Creator, asked_at: datetime) -> str:
    return _serializer("password reset").dumps([creator.id, _fingerprint(creator), int(asked_at.timestamp())])


def confirm_token(creator: Creator, address: str, asked_at: datetime) -> str:
    return _serializer("confirm email").dumps([creator.id, address, int(asked_at.timestamp())])


def _load(purpose: str, token: object) -> list:
    invalid = BadLink(_("This link is not valid. Copy the whole link from the email, or ask for a new one."))
    if not isinstance(token, str) or len(token) > MAX_LINK_TOKEN_LENGTH:
        raise invalid
    try:
        payload = _serializer(purpose).loads(token)
    except (BadSignature, ValueError, UnicodeError):
        raise invalid from None
    if (
        not isinstance(payload, list)
        or len(payload) != 3
        or not isinstance(payload[0], int)
        or not isinstance(payload[1], str)
        or not isinstance(payload[2], int)
    ):
        raise invalid
    return payload


def creator_for_reset(token: object, now: datetime) -> Creator:
    """The creator a reset link is for; BadLink says why it cannot be used (tampered, expired, used)."""
    creator_id, fingerprint, stamp = _load("password reset", token)
    creator = get_by_id(Creator, creator_id)
    if creator is None:
        raise BadLink(_("This link is not valid. Copy the whole link from the email, or ask for a new one."))
    if now.timestamp() - stamp > RESET_VALID_FOR.total_seconds():
        raise BadLink(_("This link has expired: reset links work for one hour. Ask for a new one."))
    if not hmac.compare_digest(fingerprint, _fingerprint(creator)):
        raise BadLink(
            _("This link has already been used, or your password changed since it was sent. Ask for a new one.")
        )
    return creator


def read_confirm_token(token: object, now: datetime) -> tuple[Creator, str]:
    """The creator and the address a confirmation link confirms."""
    creator_id, address, stamp = _load("confirm email", token)
    creator = get_by_id(Creator, creator_id)
    if creator is None:
        raise BadLink(_("This link is not valid. Copy the whole link from the email, or ask for a new one."))
    if now.timestamp() - stamp > CONFIRM_VALID_FOR.total_seconds():
        raise BadLink(_("This link has expired. Ask for a new one from your account page."))
    return creator, address
