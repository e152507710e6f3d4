"""Second factor: TOTP codes (RFC 6238, through pyotp) and recovery codes, with what keeps them safe at rest.

The TOTP secret is stored encrypted (Fernet) under a key derived from SECRET_KEY, so a copy of the database alone
does not give it away; recovery codes are stored as HMAC-SHA256 under another key derived from it. Rotating
SECRET_KEY therefore makes enrolled authenticators unreadable: the operator then resets the creators' second factor
(`flask --app app creators reset-2fa EMAIL`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..config import settings
from ..limits import MAX_CODE_LENGTH

STEP_SECONDS = 30
SKEW_STEPS = 1  # a code from the step before or after ours is accepted: phones' clocks drift
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread


def _derived_key(purpose: bytes) -> bytes:
    secret = settings().SECRET_KEY.encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"webinar_pay " + purpose).derive(secret)


def _fernet() -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_derived_key(b"totp secret")))


def new_secret() -> str:
    return pyotp.random_base32()


def seal(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def unseal(sealed: str) -> str | None:
    """The secret, or None when it was sealed under another SECRET_KEY."""
    try:
        return _fernet().decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError):
        return None


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def clean_code(code: object) -> str:
    """A code as typed, without spaces or dashes, lower case; "" for anything that cannot be a code."""
    if not isinstance(code, str) or len(code) > MAX_CODE_LENGTH:
        return ""
    cleaned = "".join(code.split()).replace("-", "").lower()
    return cleaned if cleaned.isascii() and cleaned.isalnum() else ""


def is_totp_shaped(code: str) -> bool:
    return len(code) == 6 and code.isdigit()


def current_step(now: datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code `code` is, within one step of `now`, or None."""
    totp = pyotp.TOTP(secret)
    step = current_step(now)
    for candidate in range(step - SKEW_STEPS, step + SKEW_STEPS + 1):
        if hmac.compare_digest(totp.at(candidate * STEP_SECONDS), code):
            return candidate
    return None


def code_at(secret: str, moment: datetime) -> str:
    """The code an authenticator shows at `moment` (for tests and the CLI's checks)."""
    return pyotp.TOTP(secret).at(moment)


def new_recovery_codes() -> list[str]:
    """Ten codes of 16 characters (80 bits each), shown as four groups of four."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(16))
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
    return codes


def recovery_code_hash(code: str) -> str:
    """Keyed, so that the stored hashes cannot be tried offline without SECRET_KEY."""
    return hmac.new(_derived_key(b"recovery code"), clean_code(code).encode(), hashlib.sha256).hexdigest()
