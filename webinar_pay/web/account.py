"""The creator's account page (`/account`): name, email, password, API tokens, recent log-ins, log out everywhere;
and the second factor (`/account/2fa`)."""

from __future__ import annotations

import segno
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..extensions import limiter
from ..services import ServiceError
from ..services.accounts import (
    change_email,
    change_name,
    change_password,
    confirm_two_factor,
    create_token_with_check,
    disable_two_factor,
    end_all_sessions,
    enrolment_secret,
    new_recovery_codes,
    provisioning_uri,
    recent_logins,
    resend_confirmation,
    start_two_factor,
    unused_recovery_codes,
)
from ..services.creators import creator_tokens, revoke_api_token
from .auth import _login_limit, log_in

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.before_request
@login_required
def require_login() -> None:
    pass


def _page(errors: dict[str, str] | None = None, status: int = 200, new_token: str | None = None):
    page = render_template(
        "account/index.html",
        creator=current_user,
        errors=errors or {},
        values=request.form if errors else {},
        tokens=creator_tokens(current_user),
        logins=recent_logins(current_user),
        new_token=new_token,
    )
    return page, status


@bp.get("")
def index():
    return _page()


@bp.post("/profile")
def profile():
    try:
        change_name(current_user, request.form.get("name", ""))
    except ServiceError as error:
        return _page(error.fields or {"name": error.message}, error.http_status)
    flash(_("Name saved."))
    return redirect(url_for(".index"))


@bp.post("/email")
@limiter.limit(_login_limit)
def email():
    try:
        address = change_email(current_user, request.form.get("new_email", ""), request.form.get("password", ""))
    except ServiceError as error:
        return _page({("new_email" if k == "email" else k): v for k, v in error.fields.items()} or {
            "new_email": error.message}, error.http_status)  # fmt: skip
    if current_user.pending_email:
        flash(_("We sent a link to %(email)s: your login changes to it once you follow the link.", email=address))
    return redirect(url_for(".index"))


@bp.post("/confirm/resend")
@limiter.limit(_login_limit)
def resend():
    resend_confirmation(current_user)
    flash(_("We sent the confirmation link again. It can take a minute to arrive."))
    return redirect(url_for(".index"))


@bp.post("/password")
@limiter.limit(_login_limit)
def password():
    form = request.form
    if form.get("new_password", "") != form.get("new_password_again", ""):
        return _page({"new_password_again": _("The two passwords differ.")}, 422)
    try:
        change_password(current_user, form.get("current_password", ""), form.get("new_password", ""))
    except ServiceError as error:
        fields = {("new_password" if k == "password" else k): v for k, v in error.fields.items()}
        return _page(fields or {"new_password": error.message}, error.http_status)
    # This browser stays in (the proxy itself must not become the logged-in user); every other session ended.
    log_in(current_user._get_current_object(), remember=False, method="password")
    flash(_("Password changed. You were logged out everywhere else."))
    return redirect(url_for(".index"))


@bp.post("/logout-everywhere")
def logout_everywhere():
    end_all_sessions(current_user)
    log_in(current_user._get_current_object(), remember=False, method="password")
    flash(_("Every other session has ended: other browsers and devices must log in again."))
    return redirect(url_for(".index"))


@bp.post("/tokens")
@limiter.limit(_login_limit)
def create_token():
    form = request.form
    try:
        token = create_token_with_check(current_user, form.get("name", ""), form.get("code", ""), form.get("password"))
    except ServiceError as error:
        fields = {("token_" + k if k in ("name", "password", "code") else k): v for k, v in error.fields.items()}
        return _page(fields or {"token_name": error.message}, error.http_status)
    return _page(new_token=token)


@bp.post("/tokens/<int:token_id>/revoke")
def revoke_token(token_id: int):
    token = revoke_api_token(current_user, token_id)
    flash(_("Token %(name)s revoked: it no longer opens the API.", name=token.name or _("without a name")))
    return redirect(url_for(".index"))


# -- the second factor ------------------------------------------------------------------------------------------------


def _qr_code(uri: str) -> str:
    """The enrolment QR code as an SVG data URI, drawn here: no outside service sees the secret, and the page's
    strict Content-Security-Policy allows `data:` images."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


def _two_factor_page(errors: dict[str, str] | None = None, status: int = 200, codes: list[str] | None = None):
    secret = enrolment_secret(current_user)
    uri = provisioning_uri(current_user, secret) if secret else None
    page = render_template(
        "account/two_factor.html",
        creator=current_user,
        secret=secret,
        qr=_qr_code(uri) if uri else None,
        errors=errors or {},
        codes=codes,
        unused_codes=unused_recovery_codes(current_user) if current_user.has_two_factor else 0,
    )
    return page, status


@bp.get("/2fa")
def two_factor():
    return _two_factor_page()


@bp.post("/2fa")
@limiter.limit(_login_limit)
def two_factor_action():
    action = request.form.get("action", "")
    code = request.form.get("code", "")
    try:
        if action == "start":
            start_two_factor(current_user)
            return redirect(url_for(".two_factor"))
        if action == "confirm":
            codes = confirm_two_factor(current_user, code)
            flash(_("Two-factor authentication is on. Keep your recovery codes somewhere safe."))
            return _two_factor_page(codes=codes)
        if action == "codes":
            codes = new_recovery_codes(current_user, code)
            flash(_("New recovery codes: the old ones no longer work."))
            return _two_factor_page(codes=codes)
        if action == "disable":
            disable_two_factor(current_user, code)
            flash(_("Two-factor authentication is off."))
            return redirect(url_for(".two_factor"))
    except ServiceError as error:
        return _two_factor_page(error.fields or {"code": error.message}, error.http_status)
    return _two_factor_page({"code": _("Choose one of the buttons.")}, 400)
