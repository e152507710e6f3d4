"""A creator's account: sign-up without telling who has one, address confirmation, password reset and change,
sessions that end, the second factor (TOTP and recovery codes), API tokens behind a fresh code, log-in records.

Every answer that could tell whether an address has an account is the same either way: sign-up and the reset form
say "check your inbox" and the inbox says the rest.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash

from ..config import settings
from ..extensions import db
from ..limits import MAX_EMAIL_LENGTH
from ..locales import DEFAULT_LOCALE
from ..models import Creator, LoginRecord, RecoveryCode, utcnow
from . import ServiceError, ValidationError
from . import totp as factor
from .account_links import BadLink, creator_for_reset, read_confirm_token
from .creators import (
    check_new_account,
    clean_name,
    create_api_token,
    find_creator,
    hash_password,
    normalize_email,
    password_problem,
    token_name,
)
from .outbox.kinds import ACCOUNT_EXISTS, CONFIRM_EMAIL, PASSWORD_RESET
from .outbox.planning import account_messages_since, plan_account_message

RESETS_PER_HOUR = 3  # reset emails one account receives at most, whoever asks
LOGINS_KEPT = 20


class EmailNotVerified(ServiceError):
    """Paid seats are sold only by creators whose address answers: buyers and providers write to it."""

    code = "email_not_verified"
    http_status = 403


class WrongCode(ServiceError):
    code = "wrong_code"
    http_status = 401


def require_verified_email(creator: Creator) -> None:
    if not creator.email_verified:
        raise EmailNotVerified(
            _(
                "Confirm your email address before selling paid seats: follow the link we sent to %(email)s "
                "(your account page can send it again). Free sessions and drafts need no confirmation.",
                email=creator.email,
            )
        )


# -- sign-up, confirmation, reset ---------------------------------------------------------------------------------


def sign_up(email: str, name: str, password: str, timezone: str, locale: str = DEFAULT_LOCALE) -> None:
    """Create an account and send its confirmation link; for an address that has an account, tell its owner by
    email instead. The caller sees the same outcome either way (ValidationError only for the form's own mistakes)."""
    email, name = check_new_account(email, name, password, timezone)
    password_hash = hash_password(password)  # both ways, so that both take the same time
    existing = find_creator(email)
    if existing is not None:
        plan_account_message(existing, ACCOUNT_EXISTS, existing.email)
        db.session.commit()
        return
    creator = Creator(email=email, name=name, password_hash=password_hash, timezone=timezone, locale=locale)
    db.session.add(creator)
    try:
        db.session.flush()
    except IntegrityError:  # the same address signed up twice at once: the first one has it
        db.session.rollback()
        return
    plan_account_message(creator, CONFIRM_EMAIL, creator.email)
    db.session.commit()


def resend_confirmation(creator: Creator) -> None:
    address = creator.pending_email or creator.email
    if creator.email_verified and not creator.pending_email:
        return
    plan_account_message(creator, CONFIRM_EMAIL, address)
    db.session.commit()


def confirm_email(token: object, now: datetime | None = None) -> Creator:
    """Follow a confirmation link: the login address is confirmed, or the pending new one becomes the login."""
    creator, address = read_confirm_token(token, now or utcnow())
    if creator.pending_email and creator.pending_email.lower() == address.lower():
        if find_creator(address) not in (None, creator):
            raise BadLink(_("%(email)s belongs to another account now: it cannot be yours too.", email=address))
        creator.email, creator.pending_email = address, None
        creator.email_verified_at = now or utcnow()
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            message = _("%(email)s belongs to another account now: it cannot be yours too.", email=address)
            raise BadLink(message) from None
        return creator
    if creator.email.lower() != address.lower():
        raise BadLink(_("This link is for an address that is no longer on the account. Ask for a new one."))
    if not creator.email_verified:
        creator.email_verified_at = now or utcnow()
        db.session.commit()
    return creator


def request_password_reset(email: object, now: datetime | None = None) -> None:
    """Send a reset link if the address has an account (at most RESETS_PER_HOUR an hour); the same nothing either
    way for the caller."""
    now = now or utcnow()
    if not isinstance(email, str) or len(email) > MAX_EMAIL_LENGTH:
        return
    creator = find_creator(email)
    if creator is None:
        return
    if account_messages_since(creator, PASSWORD_RESET, now - timedelta(hours=1)) >= RESETS_PER_HOUR:
        return
    plan_account_message(creator, PASSWORD_RESET, creator.email, now)
    db.session.commit()


def check_reset_link(token: object, now: datetime | None = None) -> Creator:
    return creator_for_reset(token, now or utcnow())


def reset_password(token: object, password: object, now: datetime | None = None) -> Creator:
    """Set a new password through a reset link: the link stops working, every session ends."""
    creator = creator_for_reset(token, now or utcnow())
    _set_password(creator, password)
    db.session.commit()
    return creator


def _set_password(creator: Creator, password: object) -> None:
    problem = password_problem(password, email=creator.email, name=creator.name)
    if problem:
        raise ValidationError(_("Please correct the marked fields."), fields={"password": problem})
    creator.password_hash = hash_password(password)
    creator.session_version += 1


# -- the account page ------------------------------------------------------------------------------------------------


def _check_password(creator: Creator, password: object, field: str = "current_password") -> None:
    if not isinstance(password, str) or not check_password_hash(creator.password_hash, password):
        message = _("That is not your current password.")
        raise ValidationError(message, fields={field: message})


def change_password(creator: Creator, current: object, new: object) -> None:
    """Every session ends, this one included: the caller logs the current browser in again."""
    _check_password(creator, current)
    _set_password(creator, new)
    db.session.commit()


def change_name(creator: Creator, name: object) -> None:
    creator.name = clean_name(name)
    db.session.commit()


def change_email(creator: Creator, new_email: object, password: object) -> str:
    """Ask to move the login to another address: it changes once the link sent there is followed. The answer is the
    same whether or not another account has that address (the link then says so to its owner only)."""
    _check_password(creator, password, "password")
    address = normalize_email(new_email if isinstance(new_email, str) else "")
    if address.lower() == creator.email.lower():
        creator.pending_email = None
        db.session.commit()
        return address
    creator.pending_email = address
    plan_account_message(creator, CONFIRM_EMAIL, address)
    db.session.commit()
    return address


def end_all_sessions(creator: Creator) -> None:
    """Log out everywhere: every login cookie issued so far stops working."""
    db.session.execute(
        update(Creator).where(Creator.id == creator.id).values(session_version=Creator.session_version + 1)
    )
    db.session.commit()
    db.session.refresh(creator)


def record_login(creator: Creator, address: str | None, browser: str | None, method: str) -> None:
    db.session.add(
        LoginRecord(
            creator_id=creator.id, at=utcnow(), address=(address or "")[:64] or None,
            browser=(browser or "")[:200] or None, method=method,
        )
    )  # fmt: skip
    db.session.flush()
    keep = select(LoginRecord.id).where(LoginRecord.creator_id == creator.id).order_by(LoginRecord.id.desc())
    db.session.execute(
        delete(LoginRecord).where(
            LoginRecord.creator_id == creator.id, LoginRecord.id.not_in(keep.limit(LOGINS_KEPT).scalar_subquery())
        )
    )
    db.session.commit()


def recent_logins(creator: Creator) -> list[LoginRecord]:
    return list(
        db.session.scalars(
            select(LoginRecord).where(LoginRecord.creator_id == creator.id).order_by(LoginRecord.id.desc()).limit(10)
        )
    )


# -- the second factor -----------------------------------------------------------------------------------------------


def start_two_factor(creator: Creator) -> str:
    """A new secret for the creator to scan, not yet required (`confirm_two_factor` turns it on)."""
    if creator.has_two_factor:
        raise ServiceError(_("Two-factor authentication is already on."))
    secret = factor.new_secret()
    creator.totp_secret, creator.totp_last_step = factor.seal(secret), None
    db.session.commit()
    return secret


def enrolment_secret(creator: Creator) -> str | None:
    """The secret being enrolled (to show its QR code again), or None."""
    if creator.has_two_factor or not creator.totp_secret:
        return None
    return factor.unseal(creator.totp_secret)


def provisioning_uri(creator: Creator, secret: str) -> str:
    return factor.provisioning_uri(secret, creator.email, settings().TOTP_ISSUER)


def _wrong_code() -> WrongCode:
    message = _("That code is not right. Type the 6 digits your app shows now (or a recovery code).")
    return WrongCode(message, fields={"code": message})


def _use_totp(creator: Creator, code: str, now: datetime) -> bool:
    """Whether `code` is the creator's TOTP code now (one step of skew either way), never accepting a step twice:
    the step is recorded with a conditional UPDATE, so two requests with one code cannot both pass."""
    secret = factor.unseal(creator.totp_secret or "")
    if secret is None or not factor.is_totp_shaped(code):
        return False
    step = factor.matching_step(secret, code, now)
    if step is None:
        return False
    used = db.session.execute(
        update(Creator)
        .where(
            Creator.id == creator.id,
            or_(Creator.totp_last_step.is_(None), Creator.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if used.rowcount != 1:
        message = _("That code was just used. Wait for your app to show the next one.")
        raise WrongCode(message, fields={"code": message})
    db.session.refresh(creator)
    return True


def _use_recovery_code(creator: Creator, code: str, now: datetime) -> bool:
    if factor.is_totp_shaped(code) or not code:
        return False
    used = db.session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.creator_id == creator.id,
            RecoveryCode.code_hash == factor.recovery_code_hash(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return used.rowcount == 1


def check_second_factor(creator: Creator, code: object, now: datetime | None = None, *, recovery: bool = True) -> str:
    """ "totp" or "recovery_code" when `code` passes (and is spent); WrongCode otherwise, with nothing changed."""
    now = now or utcnow()
    cleaned = factor.clean_code(code)
    if _use_totp(creator, cleaned, now):
        return "totp"
    if recovery and _use_recovery_code(creator, cleaned, now):
        return "recovery_code"
    raise _wrong_code()


def _new_recovery_codes(creator: Creator) -> list[str]:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.creator_id == creator.id))
    codes = factor.new_recovery_codes()
    db.session.add_all(RecoveryCode(creator_id=creator.id, code_hash=factor.recovery_code_hash(c)) for c in codes)
    return codes


def confirm_two_factor(creator: Creator, code: object, now: datetime | None = None) -> list[str]:
    """Turn the second factor on once the first code from the app is right; the recovery codes, shown once."""
    now = now or utcnow()
    if creator.has_two_factor:
        raise ServiceError(_("Two-factor authentication is already on."))
    if enrolment_secret(creator) is None:
        raise ServiceError(_("Start again: scan a new QR code."))
    if not _use_totp(creator, factor.clean_code(code), now):
        raise _wrong_code()
    creator.totp_enabled_at = now
    codes = _new_recovery_codes(creator)
    db.session.commit()
    return codes


def new_recovery_codes(creator: Creator, code: object) -> list[str]:
    """Replace the recovery codes (the old ones stop working), after a fresh TOTP code."""
    if not creator.has_two_factor:
        raise ServiceError(_("Two-factor authentication is off."))
    check_second_factor(creator, code, recovery=False)
    codes = _new_recovery_codes(creator)
    db.session.commit()
    return codes


def unused_recovery_codes(creator: Creator) -> int:
    return len(
        db.session.scalars(
            select(RecoveryCode.id).where(RecoveryCode.creator_id == creator.id, RecoveryCode.used_at.is_(None))
        ).all()
    )


def disable_two_factor(creator: Creator, code: object) -> None:
    if not creator.has_two_factor:
        raise ServiceError(_("Two-factor authentication is off."))
    check_second_factor(creator, code)
    reset_two_factor(creator)


def reset_two_factor(creator: Creator) -> None:
    """Turn the second factor off and forget its secret and codes (the operator's `creators reset-2fa`)."""
    creator.totp_secret = creator.totp_enabled_at = creator.totp_last_step = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.creator_id == creator.id))
    db.session.commit()


# -- API tokens ------------------------------------------------------------------------------------------------------


def create_token_with_check(creator: Creator, name: object, code: object, password: object) -> str:
    """A new API token, shown once: after a fresh TOTP code when the second factor is on, else the password."""
    label = token_name(name)
    if creator.has_two_factor:
        check_second_factor(creator, code, recovery=False)
    else:
        _check_password(creator, password, "password")
    return create_api_token(creator, label)
