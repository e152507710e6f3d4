"""Creator accounts, their profile (with the Zoom user linked to it) and their API tokens."""

import functools
import hashlib
import re
import secrets
import unicodedata
from collections.abc import Mapping
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from integrations.video import UserNotFound, VideoConfigurationError, VideoError, VideoUser

from ..extensions import db
from ..limits import (
    MAX_BIO_LENGTH,
    MAX_EMAIL_LENGTH,
    MAX_PASSWORD_LENGTH,
    MAX_SLUG_LENGTH,
    MAX_TOKEN_NAME_LENGTH,
    MIN_PASSWORD_LENGTH,
    MIN_SLUG_LENGTH,
)
from ..locales import DEFAULT_LOCALE, supported
from ..models import ApiToken, Creator, get_by_id, utcnow
from . import NotFound, ValidationError
from .text import TextError, clean_text, clean_url, email_address, is_clean, person_name
from .timezones import is_valid_timezone
from .video import VideoPlatformUnavailable, video_platform

# Checked against when the email is unknown so that both answers take the same time.
_DUMMY_HASH = generate_password_hash("timing-equaliser-password")


def normalize_email(email: str) -> str:
    try:
        return email_address(email or "")
    except TextError as error:
        raise ValidationError(error.message, fields={"email": error.message}) from None


def clean_name(name: Any) -> str:
    """A person's name as shown on pages and in email headers (`text.person_name`)."""
    try:
        return person_name(name)
    except TextError as error:
        raise ValidationError(error.message, fields={"name": error.message}) from None


@functools.cache
def _common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords of the lists zxcvbn ships (leaked-password corpora), lower case."""
    return frozenset(word.lower() for word in FREQUENCY_LISTS["passwords"])


def password_problem(password: object, *, email: str = "", name: str = "") -> str | None:
    """Why a new password is refused, or None: at least MIN_PASSWORD_LENGTH characters (at most
    MAX_PASSWORD_LENGTH), not a common password, not the account's email or name."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        return _("Use at least %(n)d characters.", n=MIN_PASSWORD_LENGTH)
    if len(password) > MAX_PASSWORD_LENGTH:
        return _("Use at most %(n)d characters.", n=MAX_PASSWORD_LENGTH)
    if not is_clean(password):
        return _("Use printable characters only.")
    folded = password.lower()
    squeezed = "".join(folded.split())
    if folded in _common_passwords() or squeezed in _common_passwords():
        return _("This password is one of the most common ones, which attackers try first. Choose another.")
    if folded in {email.strip().lower(), name.strip().lower()}:
        return _("Do not use your email address or your name as your password.")
    return None


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def _new_account_fields(email: str, name: str, password: str, timezone: str) -> tuple[str, str, dict[str, str]]:
    """The email and name of a new account, cleaned, and what is wrong with each field (empty: nothing)."""
    errors = {}
    try:
        email = normalize_email(email)
    except ValidationError as error:
        errors.update(error.fields)
    try:
        name = clean_name(name)
    except ValidationError as error:
        errors.update(error.fields)
    problem = password_problem(
        password, email=email if "email" not in errors else "", name=name if "name" not in errors else ""
    )
    if problem:
        errors["password"] = problem
    if not is_valid_timezone(timezone):
        errors["timezone"] = _("Choose a time zone from the list.")
    return email, name, errors


def check_new_account(email: str, name: str, password: str, timezone: str) -> tuple[str, str]:
    """The email and name of a new account, cleaned; ValidationError lists every field that is wrong."""
    email, name, errors = _new_account_fields(email, name, password, timezone)
    if errors:
        raise ValidationError(_("Please correct the marked fields."), fields=errors)
    return email, name


def create_creator(
    email: str,
    name: str,
    password: str,
    timezone: str = "UTC",
    locale: str = DEFAULT_LOCALE,
    *,
    verified: bool = False,
) -> Creator:
    """The operator's way in (`flask creators create`), which says when the address is taken; sign-up goes through
    `accounts.sign_up`, which never does. `verified`: the operator vouches for the address."""
    email, name, errors = _new_account_fields(email, name, password, timezone)
    if not supported(locale):
        errors["locale"] = _("Choose a language from the list.")
    if "email" not in errors and find_creator(email):
        errors["email"] = _("An account with this email already exists.")
    if errors:
        raise ValidationError(_("Please correct the marked fields."), fields=errors)
    creator = Creator(email=email, name=name, password_hash=hash_password(password), timezone=timezone, locale=locale)
    creator.email_verified_at = utcnow() if verified else None
    db.session.add(creator)
    db.session.flush()
    creator.slug = _free_slug(slug_for(name), creator.id)
    db.session.commit()
    return creator


# -- the creator's public page, /c/<slug> ---------------------------------------------------------------------------

SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def slug_for(name: str) -> str:
    """A page address from a name: 'Zoë Smith' -> 'zoe-smith' (the migration backfills the same way)."""
    ascii_name = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:40].strip("-")
    return base if len(base) >= MIN_SLUG_LENGTH else f"creator-{base}".strip("-")


def _slug_taken(slug: str, creator_id: int) -> bool:
    return db.session.scalar(select(Creator.id).where(Creator.slug == slug, Creator.id != creator_id)) is not None


def _free_slug(base: str, creator_id: int) -> str:
    return base if not _slug_taken(base, creator_id) else f"{base}-{creator_id}"


def public_creator(slug: str) -> Creator:
    """The creator whose page is /c/<slug>; a deleted account has no page."""
    creator = None
    if isinstance(slug, str) and len(slug) <= MAX_SLUG_LENGTH and SLUG.fullmatch(slug):
        creator = db.session.scalar(select(Creator).where(Creator.slug == slug, Creator.deleted_at.is_(None)))
    if creator is None:
        raise NotFound(_("No such page."))
    return creator


def _check_page(creator: Creator, raw: Mapping[str, str], errors: dict[str, str]) -> tuple[str | None, str | None]:
    """The profile's page address and bio, when the form sends them (else unchanged)."""
    slug, bio = creator.slug, creator.bio
    if "slug" in raw:
        slug = (raw.get("slug") or "").strip().lower()
        if not (MIN_SLUG_LENGTH <= len(slug) <= MAX_SLUG_LENGTH and SLUG.fullmatch(slug)):
            errors["slug"] = _(
                "Use %(min)d to %(max)d lower-case letters, digits and single hyphens, such as ada-teacher.",
                min=MIN_SLUG_LENGTH, max=MAX_SLUG_LENGTH,
            )  # fmt: skip
        elif _slug_taken(slug, creator.id):
            errors["slug"] = _("Another creator's page has this address already.")
    if "bio" in raw:
        try:
            bio = clean_text(raw.get("bio") or "", max_length=MAX_BIO_LENGTH, multiline=True, required=False) or None
        except TextError as error:
            errors["bio"] = str(error)
    return slug, bio


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


def create_api_token(creator: Creator, name: str | None = None) -> str:
    """Returns the token once; only its hash is stored."""
    token = "wp_" + secrets.token_urlsafe(32)
    db.session.add(ApiToken(creator_id=creator.id, token_hash=_token_hash(token), name=name))
    db.session.commit()
    return token


def token_name(name: object) -> str:
    """An API token's label: one line, 1 to MAX_TOKEN_NAME_LENGTH characters."""
    try:
        cleaned = clean_text(name, max_length=MAX_TOKEN_NAME_LENGTH, required=False)
    except TextError as error:
        raise ValidationError(error.message, fields={"name": error.message}) from None
    if not cleaned:
        message = _("Give the token a name, such as the tool that will use it.")
        raise ValidationError(message, fields={"name": message})
    return cleaned


def creator_tokens(creator: Creator) -> list[ApiToken]:
    return list(db.session.scalars(select(ApiToken).where(ApiToken.creator_id == creator.id).order_by(ApiToken.id)))


def revoke_api_token(creator: Creator, token_id: int) -> ApiToken:
    """Deletes one of the creator's tokens; another creator's is not found."""
    token = get_by_id(ApiToken, token_id)
    if token is None or token.creator_id != creator.id:
        raise NotFound(_("No such token."))
    db.session.delete(token)
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
    """Name, time zone, language (of the creator's own emails), what attendees see of the creator in emails
    (reply-to address, colour, logo), and the creator's own Zoom user (checked with Zoom when it changes, see
    `find_zoom_user`)."""
    errors: dict[str, str] = {}
    try:
        name = clean_name(raw.get("name", ""))
    except ValidationError as error:
        errors.update(error.fields)
    timezone = raw.get("timezone") or creator.timezone
    if not is_valid_timezone(timezone):
        errors["timezone"] = _("Choose a time zone from the list.")
    locale = raw.get("locale") or creator.locale
    if not supported(locale):
        errors["locale"] = _("Choose a language from the list.")
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
    zoom_user: VideoUser | None = _linked_zoom_user(creator)
    if "zoom_user" in raw and not _is_linked(creator, raw.get("zoom_user") or ""):
        wanted = (raw.get("zoom_user") or "").strip()
        zoom_user = None
        if wanted and not errors:  # Zoom is asked only once the rest of the form is right
            try:
                zoom_user = find_zoom_user(creator, wanted)
            except ValidationError as error:
                errors.update(error.fields)
    slug, bio = _check_page(creator, raw, errors)
    if errors:
        raise ValidationError(_("Please correct the marked fields."), fields=errors)
    creator.name, creator.timezone, creator.locale, creator.reply_to = name, timezone, locale, reply_to
    creator.slug, creator.bio = slug, bio
    creator.brand_colour, creator.logo_url = colour, logo_url
    _set_zoom_user(creator, zoom_user)
    return creator


# -- the creator's Zoom user ---------------------------------------------------------------------------------------


def _linked_zoom_user(creator: Creator) -> VideoUser | None:
    return VideoUser(creator.zoom_user_id, creator.zoom_user_email) if creator.zoom_user_id else None


def _is_linked(creator: Creator, user: str) -> bool:
    """Whether `user` (an id or an email, as typed) names the Zoom user already linked, or none when empty."""
    user = user.strip()
    if not user or not creator.zoom_user_id:
        return not user and not creator.zoom_user_id
    return user == creator.zoom_user_id or user.lower() == (creator.zoom_user_email or "").lower()


def _not_your_zoom_user(creator: Creator) -> ValidationError:
    """The one answer for a user Zoom does not know and for someone else's: the form reveals no one's account."""
    message = _(
        "Enter your own user on the app's Zoom account (its email or user ID): its email must be your login "
        "email, %(email)s. To link another Zoom user, ask the operator of this site.",
        email=creator.email,
    )
    return ValidationError(message, fields={"zoom_user": message})


def _taken() -> ValidationError:
    message = _("This Zoom user is linked to another creator's account.")
    return ValidationError(message, fields={"zoom_user": message})


def find_zoom_user(creator: Creator, user: str, *, by_operator: bool = False) -> VideoUser:
    """Look a Zoom user up (an id or an email of the app's Zoom account) for the creator to link.

    A creator may link only the Zoom user whose email is their own login email: meetings it hosts become theirs
    to sell, so linking someone else's user would be a way into their meetings. The operator may link any user
    (`flask creators link-zoom`). A Zoom user is linked to one creator at most.
    """
    try:
        found = video_platform().get_user(user)
    except UserNotFound:
        if by_operator:
            message = _("The app's Zoom account has no user %(user)s.", user=user)
            raise ValidationError(message, fields={"zoom_user": message}) from None
        raise _not_your_zoom_user(creator) from None
    except VideoConfigurationError as error:
        message = _("Zoom refused the request: %(reason)s", reason=str(error))
        raise ValidationError(message, fields={"zoom_user": message}) from None
    except VideoError as error:
        message = _("Zoom could not be reached. Please try again in a minute.")
        raise VideoPlatformUnavailable(message, fields={"zoom_user": message}) from error
    if not by_operator and (found.email or "").lower() != creator.email.lower():
        raise _not_your_zoom_user(creator)
    other = db.session.scalar(select(Creator.id).where(Creator.zoom_user_id == found.user_id, Creator.id != creator.id))
    if other is not None:
        raise _taken()
    return found


def link_zoom_user(creator: Creator, user: str | None, *, by_operator: bool = False) -> Creator:
    """Link the creator to a Zoom user (checked by `find_zoom_user`), or unlink with None. Commits."""
    _set_zoom_user(creator, find_zoom_user(creator, user, by_operator=by_operator) if user else None)
    return creator


def _set_zoom_user(creator: Creator, zoom_user: VideoUser | None) -> None:
    """Commits; the unique index settles two creators linking one Zoom user at once."""
    creator.zoom_user_id = zoom_user.user_id if zoom_user else None
    creator.zoom_user_email = zoom_user.email if zoom_user else None
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise _taken() from None
