"""Creator sign-up, log-in and log-out."""

from urllib.parse import urlparse

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from ..config import settings
from ..extensions import limiter
from ..services import ValidationError
from ..services.creators import authenticate, create_creator
from ..services.timezones import all_timezones
from .language import current_language

bp = Blueprint("auth", __name__)


def _login_limit() -> str:
    return settings().RATELIMIT_LOGIN


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and not urlparse(target).netloc:
        return target
    return url_for("dashboard.index")


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def signup():
    errors: dict[str, str] = {}
    if request.method == "POST":
        form = request.form
        try:
            creator = create_creator(
                form.get("email", ""), form.get("name", ""), form.get("password", ""), form.get("timezone", "UTC"),
                locale=current_language(),  # the language the sign-up page was read in: the browser's, or chosen
            )  # fmt: skip
        except ValidationError as error:
            errors = error.fields
        else:
            login_user(creator)
            flash(_("Welcome, %(name)s! Create your first session.", name=creator.name))
            return redirect(url_for("dashboard.new_session"))
    status = 422 if errors else 200
    return render_template("auth/signup.html", errors=errors, timezones=all_timezones()), status


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login():
    error = None
    if request.method == "POST":
        creator = authenticate(request.form.get("email", ""), request.form.get("password", ""))
        if creator is not None:
            login_user(creator)
            return redirect(_safe_next(request.args.get("next")))
        error = _("Wrong email or password.")
    return render_template("auth/login.html", error=error), 401 if error else 200


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    flash(_("You are logged out."))
    return redirect(url_for("storefront.index"))


@bp.app_context_processor
def inject_user():
    return {"current_user": current_user}
