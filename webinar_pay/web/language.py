"""Which language a page is in, and the switch between them.

A visitor's own choice (the switch, kept in a cookie) comes first; then the language of the order a page is about
(its buyer chose it at checkout, see `order_page`); then a logged-in creator's account language; then the browser's
`Accept-Language`; English when none of them is supported.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, g, has_request_context, redirect, request, url_for
from flask_babel import get_locale, refresh
from flask_login import current_user

from ..config import settings
from ..locales import DEFAULT_LOCALE, LANGUAGE_NAMES, SUPPORTED_LOCALES, supported

bp = Blueprint("language", __name__)

COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600


def page_locale() -> str | None:
    """Flask-Babel's locale selector; outside a request (the worker's own context) the default language."""
    if not has_request_context():
        return None
    chosen = supported(request.cookies.get(COOKIE)) or supported(g.get("order_locale"))
    if chosen:
        return chosen
    if current_user and current_user.is_authenticated and supported(getattr(current_user, "locale", None)):
        return current_user.locale
    return request.accept_languages.best_match(SUPPORTED_LOCALES) or DEFAULT_LOCALE


def order_page(locale: str | None) -> None:
    """The page about to be shown is about an order: unless the visitor chose a language, show it in the order's."""
    g.order_locale = locale
    refresh()


def current_language() -> str:
    return str(get_locale() or DEFAULT_LOCALE)


def local_path(target: str | None) -> str | None:
    """`target` if it is a path on this site (`/s/1?x=y`), else None: never another host, scheme or `//host`."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or len(target) > 2000:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(char) < 32 or ord(char) == 127 for char in target):
        return None
    return target


def _here() -> str:
    """Where the switch brings the visitor back: this page, or for the answer to a form, the page that held it."""
    if request.method == "GET":
        return request.full_path.rstrip("?")
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc == request.host and referrer.path:
        return referrer.path + (f"?{referrer.query}" if referrer.query else "")
    return "/"


def language_links() -> list[dict]:
    """The layout's switch: each language, its link back to this page, and whether it is the one shown."""
    here, shown = _here(), current_language()
    return [
        {"code": code, "name": LANGUAGE_NAMES[code], "current": code == shown,
         "url": url_for("language.switch", code=code, next=here)}
        for code in SUPPORTED_LOCALES
    ]  # fmt: skip


def remember(response, code: str):
    response.set_cookie(
        COOKIE, code, max_age=COOKIE_MAX_AGE, httponly=True, samesite="Lax",
        secure=settings().BASE_URL.startswith("https://"),
    )  # fmt: skip
    return response


@bp.get("/lang/<code>")
def switch(code: str):
    chosen = supported(code)
    if chosen is None:
        abort(404)
    response = redirect(local_path(request.args.get("next")) or url_for("storefront.index"), code=303)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the page left may be a ticket, whose address is secret
    return remember(response, chosen)
