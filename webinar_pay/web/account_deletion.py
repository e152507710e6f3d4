"""Deleting a creator's account (a section of the account page): what blocks it, then the deletion itself."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, logout_user

from ..services import ValidationError
from ..services.privacy import AccountDeletionBlocked, delete_creator, deletion_blockers

bp = Blueprint("account_deletion", __name__)


def _page(errors: dict[str, str] | None = None, message: str | None = None, status: int = 200):
    page = render_template(
        "account/delete.html", blockers=deletion_blockers(current_user), errors=errors or {}, message=message
    )
    return page, status


@bp.get("/account/delete")
@login_required
def confirm():
    return _page()


@bp.post("/account/delete")
@login_required
def delete():
    if request.form.get("confirm") != "yes":
        return _page({"confirm": _("Tick the box to confirm that you mean it.")}, status=422)
    try:
        delete_creator(current_user, request.form.get("password", ""))
    except ValidationError as error:
        return _page(error.fields, status=error.http_status)
    except AccountDeletionBlocked as error:
        return _page(message=error.message, status=error.http_status)
    logout_user()
    flash(_("Your account was deleted, with your attendees' personal data. Goodbye."))
    return redirect(url_for("storefront.index"))
