"""Creator accounts and their API tokens."""

import hashlib
import re
import secrets
from collections.abc import Mapping
from typing import Any

from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext as _
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from ..models import ApiToken, Creator, utcnow
from . import ValidationError
from .text import TextError, clean_text, clean_url, is_clean
from .timezones import is_valid_timezone

MIN_PASSWORD_LENGTH = 10
MAX_NAME_LENGTH = 120  # the column's length
MAX_EMAIL_LENGTH = 254  # RFC 5321's limit, and the column's
# Checked against when the email is unknown so that both answers take the same time.
_DUMMY_HASH = generate_password_hash("timing-equaliser-password")


def normalize_email(email: str) -> str:
    try:
        email = clean_text(email or "", max_length=MAX_EMAIL_LENGTH)
        return validate_email(email, check_deliverability=False).normalized.lower()
    except (TextError, EmailNotValidError):
        raise ValidationError(
            _("Enter a valid email address."), fields={"email": _("Enter a valid email address.")}
        ) from None


def clean_name(name: Any) -> str:
    """A person's name as shown on pages and in email headers: one line, at most 120 characters."""
    try:
        name = clean_text(name, max_length=MAX_NAME_LENGTH, required=False)
    except TextError as error:
        message = error.message
    else:
        if name:
            return name
        message = _("Enter your name.")
    raise ValidationError(message, fields={"name": message})


def create_creator(email: str, name: str, password: str, timezone: str = "UTC") -> Creator:
    errors = {}
    try:
        email = normalize_email(email)
    except ValidationError as error:
        errors.update(error.fields)
    try:
        name = clean_name(name)
    except ValidationError as error:
        errors.update(error.fields)
    if len(password or "") < MIN_PASSWORD_LENGTH:
        errors["password"] = _("Use at least %(n)d characters.", n=MIN_PASSWORD_LENGTH)
    if not is_valid_timezone(timezone):
        errors["timezone"] = _("Choose a time zone from the list.")
    if "email" not in errors and find_creator(email):
        errors["email"] = _("An account with this email already exists.")
    if errors:
        raise ValidationError(_("Please correct the marked fields."), fields=errors)
    creator = Creator(email=email, name=name, password_hash=generate_password_hash(password), timezone=timezone)
    db.session.add(creator)
    db.session.commit()
    return creator


def find_creator(email: str) -> Creator | None:
    if not is_clean(email) or len(email) > MAX_EMAIL_LENGTH:
        return None  # no account has such an address, and PostgreSQL would refuse a NUL in the query
    return db.session.scalar(select(Creator).where(func.lower(Creator.email) == email.strip().lower()))


def authenticate(email: str, password: str) -> Creator | None:
    creator = find_creator(email or "")
    if creator is None:
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    return creator if check_password_hash(creator.password_hash, password or "") else None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(creator: Creator) -> str:
    """Returns the token once; only its hash is stored."""
    token = "wp_" + secrets.token_urlsafe(32)
    db.session.add(ApiToken(creator_id=creator.id, token_hash=_token_hash(token)))
    db.session.commit()
    return token


def creator_for_api_token(token: str) -> Creator | None:
    api_token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    if api_token is None:
        return None
    api_token.last_used_at = utcnow()
    db.session.commit()
    return api_token.creator


BRAND_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


def update_profile(creator: Creator, raw: Mapping[str, str]) -> Creator:
    """Name, time zone and what attendees see of the creator in emails: reply-to address, colour, logo."""
    errors: dict[str, str] = {}
    try:
        name = clean_name(raw.get("name", ""))
    except ValidationError as error:
        errors.update(error.fields)
    timezone = raw.get("timezone") or creator.timezone
    if not is_valid_timezone(timezone):
        errors["timezone"] = _("Choose a time zone from the list.")
    reply_to = (raw.get("reply_to") or "").strip() or None
    if reply_to:
        try:
            reply_to = normalize_email(reply_to)
        except ValidationError:
            errors["reply_to"] = _("Enter a valid email address, or leave it empty to use your login email.")
    colour = (raw.get("brand_colour") or "").strip() or None
    if colour and not BRAND_COLOUR.match(colour):
        errors["brand_colour"] = _("Use a colour such as #3b5bdb.")
    logo_url = (raw.get("logo_url") or "").strip() or None
    if logo_url:
        try:
            logo_url = clean_url(logo_url)
        except TextError:
            logo_url = ""
        if not logo_url.startswith("https://"):
            errors["logo_url"] = _("Enter a full https:// address of an image.")
    if errors:
        raise ValidationError(_("Please correct the marked fields."), fields=errors)
    creator.name, creator.timezone, creator.reply_to = name, timezone, reply_to
    creator.brand_colour, creator.logo_url = colour, logo_url
    db.session.commit()
    return creator
