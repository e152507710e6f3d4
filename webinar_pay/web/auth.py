"""Creator sign-up, log-in (with the second factor), log-out, address confirmation and password reset."""

from __future__ import annotations

import time
from urllib.parse import urlparse

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from ..config import settings
from ..extensions import db, limiter
from ..models import Creator
from ..services import ServiceError, ValidationError
from ..services.accounts import (
    check_reset_link,
    check_second_factor,
    confirm_email,
    end_all_sessions,
    record_login,
    request_password_reset,
    reset_password,
    sign_up,
)
from ..services.creators import authenticate
from ..services.timezones import all_timezones
from .language import current_language

bp = Blueprint("auth", __name__)

PENDING = "pending_second_factor"  # the session's note of a creator who gave the right password, for a short while
PENDING_SECONDS = 300
# The reset form answers no sooner than this, so that the time it takes (planning an email, or not) does not tell
# whether the address has an account; log-in and sign-up are evened out by hashing a password either way.
FORGOT_ANSWER_SECONDS = 0.2


def _login_limit() -> str:
    return settings().RATELIMIT_LOGIN


def _account_key() -> str:
    """Log-in attempts are also counted per account (the address typed, or the one waiting for its code), whatever
    client they come from: spreading guesses over many addresses does not buy more of them."""
    pending = session.get(PENDING) or {}
    account = str(pending.get("id", "")) or request.form.get("email", "").strip().lower()[:254]
    return f"account:{account}"


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and not urlparse(target).netloc:
        return target
    return url_for("dashboard.index")


def log_in(creator: Creator, *, remember: bool, method: str) -> None:
    """A fresh session for the creator: nothing of the session before log-in is kept (its cookie is replaced)."""
    session.clear()
    login_user(creator, remember=remember)
    record_login(creator, request.remote_addr, request.user_agent.string, method)


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def signup():
    errors: dict[str, str] = {}
    if request.method == "POST":
        form = request.form
        try:
            sign_up(
                form.get("email", ""), form.get("name", ""), form.get("password", ""), form.get("timezone", "UTC"),
                locale=current_language(),  # the language the sign-up page was read in: the browser's, or chosen
            )  # fmt: skip
        except ValidationError as error:
            errors = error.fields
        else:
            return render_template("auth/signup_sent.html", email=form.get("email", "").strip())
    status = 422 if errors else 200
    return render_template("auth/signup.html", errors=errors, timezones=all_timezones()), status


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=_account_key, scope="login-account")
def login():
    error = None
    if request.method == "POST":
        session.pop(PENDING, None)
        creator = authenticate(request.form.get("email", ""), request.form.get("password", ""))
        remember = request.form.get("remember") == "yes"
        if creator is not None and creator.has_two_factor:
            session.clear()
            session[PENDING] = {
                "id": creator.id, "version": creator.session_version, "remember": remember,
                "next": _safe_next(request.args.get("next")), "at": int(time.time()),
            }  # fmt: skip
            return redirect(url_for(".login_code"))
        if creator is not None:
            log_in(creator, remember=remember, method="password")
            return redirect(_safe_next(request.args.get("next")))
        error = _("Wrong email or password.")
    return render_template("auth/login.html", error=error), 401 if error else 200


def _pending_creator() -> tuple[Creator | None, dict]:
    pending = session.get(PENDING)
    if not isinstance(pending, dict) or time.time() - pending.get("at", 0) > PENDING_SECONDS:
        return None, {}
    creator = db.session.get(Creator, pending.get("id"))
    if creator is None or creator.session_version != pending.get("version") or not creator.has_two_factor:
        return None, {}
    return creator, pending


@bp.route("/login/code", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=_account_key, scope="login-account")
def login_code():
    creator, pending = _pending_creator()
    if creator is None:
        session.pop(PENDING, None)
        flash(_("Log in again: the page for your code is only open for five minutes after your password."))
        return redirect(url_for(".login"))
    error = None
    if request.method == "POST":
        try:
            method = check_second_factor(creator, request.form.get("code", ""))
        except ServiceError as refusal:
            error = refusal.message
        else:
            log_in(creator, remember=bool(pending.get("remember")), method=method)
            if method == "recovery_code":
                flash(_("You used a recovery code: it will not work again. Make new ones on the two-factor page."))
            return redirect(_safe_next(pending.get("next")))
    return render_template("auth/login_code.html", error=error), 401 if error else 200


@bp.post("/logout")
@login_required
def logout():
    end_all_sessions(current_user)  # a copy of this cookie, or of any other, stops working too
    logout_user()
    session.clear()
    flash(_("You are logged out."))
    return redirect(url_for("storefront.index"))


@bp.get("/confirm/<token>", endpoint="confirm_email")
def confirm_email_link(token: str):
    try:
        creator = confirm_email(token)
    except ServiceError as error:
        return render_template("error.html", message=error.message), error.http_status
    flash(_("Thank you: %(email)s is confirmed.", email=creator.email))
    if current_user.is_authenticated and current_user.id == creator.id:
        return redirect(url_for("account.index"))
    return redirect(url_for(".login"))


@bp.route("/forgot", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=_account_key, scope="login-account")
def forgot():
    if request.method == "POST":
        started = time.monotonic()
        request_password_reset(request.form.get("email", ""))
        time.sleep(max(0.0, FORGOT_ANSWER_SECONDS - (time.monotonic() - started)))
        return render_template("auth/forgot.html", sent=True)
    return render_template("auth/forgot.html", sent=False)


@bp.route("/reset/<token>", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def reset(token: str):
    try:
        creator = check_reset_link(token)
    except ServiceError as error:
        return render_template("auth/reset.html", link_error=error.message, errors={}), error.http_status
    errors: dict[str, str] = {}
    if request.method == "POST":
        if request.form.get("password", "") != request.form.get("password_again", ""):
            errors = {"password_again": _("The two passwords differ.")}
        else:
            try:
                reset_password(token, request.form.get("password", ""))
            except ValidationError as error:
                errors = error.fields
            except ServiceError as error:
                return render_template("auth/reset.html", link_error=error.message, errors={}), error.http_status
            else:
                if current_user.is_authenticated:
                    logout_user()
                session.clear()
                flash(_("Your password is changed and you are logged out everywhere. Log in with the new one."))
                return redirect(url_for(".login"))
    status = 422 if errors else 200
    return render_template("auth/reset.html", link_error=None, errors=errors, creator=creator), status


@bp.app_context_processor
def inject_user():
    return {"current_user": current_user}
