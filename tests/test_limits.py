"""Every limit is named once, in webinar_pay/limits.py: README's table states it, the forms carry it, the OpenAPI
document publishes it and the server applies it, through the HTML forms and the API alike."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import Api, session_payload
from tests.test_web import csrf_token, new_session_form, signup
from webinar_pay.limits import (
    EARLIEST_START,
    LATEST_START,
    MAX_BIO_LENGTH,
    MAX_CANCELLATION_HOURS,
    MAX_CAPACITY,
    MAX_DESCRIPTION_LENGTH,
    MAX_DISCOUNT_CODE_LENGTH,
    MAX_DISCOUNT_CODES,
    MAX_DISCOUNT_USES,
    MAX_DURATION_MINUTES,
    MAX_EMAIL_LENGTH,
    MAX_ID,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_MAJOR_DIGITS,
    MAX_NAME_LENGTH,
    MAX_PASSWORD_LENGTH,
    MAX_PRICE,
    MAX_REMINDER_OFFSET,
    MAX_REMINDERS,
    MAX_SLUG_LENGTH,
    MAX_TITLE_LENGTH,
    MAX_TOKEN_LENGTH,
    MAX_TOKEN_NAME_LENGTH,
    MAX_TYPED_AMOUNT_LENGTH,
    MAX_URL_LENGTH,
    MAX_ZOOM_MEETING_ID_DIGITS,
    MIN_DISCOUNT_CODE_LENGTH,
    MIN_PASSWORD_LENGTH,
    MIN_REMINDER_OFFSET,
    MIN_SLUG_LENGTH,
    MIN_ZOOM_MEETING_ID_DIGITS,
)

README = Path(__file__).resolve().parent.parent / "README.md"
SESSIONS = "/api/v1/sessions"


def _documented_limits() -> list[tuple[str, str]]:
    """README's table of limits, row by row."""
    lines = README.read_text().split("**Limits**", 1)[1].splitlines()
    table = [line for line in lines[lines.index("| what | limit |") + 2 :]]
    rows = table[: next(number for number, line in enumerate(table) if not line.startswith("|"))]
    return [tuple(cell.strip() for cell in row.strip("|").split(" | ")) for row in rows]


def test_readme_states_the_limits_the_code_applies():
    day = 24 * 60
    assert _documented_limits() == [
        ("`title`", f"1 to {MAX_TITLE_LENGTH:,} characters, one line"),
        ("`description`", f"{MAX_DESCRIPTION_LENGTH:,} characters; line breaks and tabs kept"),
        ("`duration_minutes`", f"1 to {MAX_DURATION_MINUTES:,} minutes"),
        ("`price`", f"0 to {MAX_PRICE:,} minor units"),
        ("`capacity`", f"1 to {MAX_CAPACITY:,} seats"),
        ("`cancellation_hours`", f"0 to {MAX_CANCELLATION_HOURS:,} hours, or null"),
        ("names (attendee at checkout, creator)", f"1 to {MAX_NAME_LENGTH} characters, one line"),
        ("email addresses", f"{MAX_EMAIL_LENGTH} characters"),
        (
            "`join_link`, `youtube_url`, `replay_url`, the profile's logo",
            f"{MAX_URL_LENGTH} characters, a full `http(s)://` address in ASCII (RFC 3986)",
        ),
        ("any text", "no control characters (NUL, escape…): they reach databases, pages and email headers"),
        (
            "`starts_at`",
            f"when creating or moving a session: between {EARLIEST_START.days} day ago and "
            f"{LATEST_START.days // 365} years from now",
        ),
        (
            "`reminder_offsets_minutes`",
            f"at most {MAX_REMINDERS}, each {MIN_REMINDER_OFFSET} minutes to {MAX_REMINDER_OFFSET // day} days "
            f"({MAX_REMINDER_OFFSET:,}) before the start",
        ),
        ("`currency`", "an ISO 4217 code from the list in the document, upper or lower case"),
        (
            "`zoom_meeting_id`",
            f"{MIN_ZOOM_MEETING_ID_DIGITS} to {MAX_ZOOM_MEETING_ID_DIGITS} digits, as text (spaces ignored) or a "
            "number; checked whatever the platform",
        ),
        (
            "discount `code`",
            f"{MIN_DISCOUNT_CODE_LENGTH} to {MAX_DISCOUNT_CODE_LENGTH} ASCII letters, digits, `-` or `_`, starting "
            "with a letter or a digit; any case, stored upper case",
        ),
        (
            "discount `percent_off` / `amount_off` / `max_uses`",
            f"1 to 100 / 1 to {MAX_PRICE:,} minor units / 1 to {MAX_DISCOUNT_USES:,}",
        ),
        ("discount codes per creator", f"{MAX_DISCOUNT_CODES:,} (deleted ones do not count)"),
        (
            "`discount_code` at checkout",
            f"{4 * MAX_DISCOUNT_CODE_LENGTH} characters (a longer one is a 422 `validation_error`; an unknown one, "
            "`discount_code_invalid`)",
        ),
        (
            "`Idempotency-Key` (refunds)",
            f"1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters; sent again with another `amount`: 422 "
            "`idempotency_key_reused`",
        ),
        (
            "an amount typed in a form (price, refund)",
            f"{MAX_TYPED_AMOUNT_LENGTH} characters, at most {MAX_MAJOR_DIGITS} digits before the decimal point",
        ),
        (
            "a creator's password (sign-up, reset, change)",
            f"{MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters, not one of the 30,000 common passwords listed "
            "by the `zxcvbn` package, not the account's email or name",
        ),
        ("an API token's name (account page)", f"1 to {MAX_TOKEN_NAME_LENGTH} characters, one line"),
        (
            "a creator's page address (`/c/<slug>`)",
            f"{MIN_SLUG_LENGTH} to {MAX_SLUG_LENGTH} lower-case letters, digits and single hyphens, unique",
        ),
        ("a creator's bio", f"{MAX_BIO_LENGTH:,} characters; line breaks kept"),
        ("a bearer token", f"{MAX_TOKEN_LENGTH} characters; a longer one is no token (401)"),
        ("ids in paths", f"1 to {MAX_ID:,}; another is not found (404)"),
    ]


def _attributes(page: str, name: str) -> dict[str, str]:
    tag = re.search(rf'<input id="{name}"[^>]*>', page).group(0)
    return dict(re.findall(r'(\w+)="([^"]*)"', tag))


# (field, the last value accepted, the first refused, as the session form and the API send them)
BOUNDS = [
    ("title", "t" * MAX_TITLE_LENGTH, "t" * (MAX_TITLE_LENGTH + 1)),
    ("duration_minutes", MAX_DURATION_MINUTES, MAX_DURATION_MINUTES + 1),
    ("capacity", MAX_CAPACITY, MAX_CAPACITY + 1),
    ("cancellation_hours", MAX_CANCELLATION_HOURS, MAX_CANCELLATION_HOURS + 1),
]


def test_the_session_form_carries_the_limits_the_server_applies(client):
    signup(client)
    page = client.get("/dashboard/sessions/new").get_data(as_text=True)
    assert _attributes(page, "title")["maxlength"] == str(MAX_TITLE_LENGTH)
    for field, last, _first_refused in BOUNDS[1:]:
        assert _attributes(page, field)["max"] == str(last), field

    for field, last, first_refused in BOUNDS:
        form = new_session_form(csrf_token=csrf_token(client, "/dashboard/sessions/new"), **{field: str(last)})
        assert client.post("/dashboard/sessions/new", data=form).status_code == 302, field
        form[field] = str(first_refused)
        response = client.post("/dashboard/sessions/new", data=form)
        assert response.status_code == 422 and f'id="{field}-error"' in response.get_data(as_text=True)


@pytest.mark.parametrize(("field", "last", "first_refused"), BOUNDS)
def test_the_api_applies_the_limits_its_document_publishes(client, create_creator, field, last, first_refused):
    api = Api(client, create_creator()[1])
    published = api.get("/api/v1/openapi.json")[1]["components"]["schemas"]["SessionInput"]["properties"][field]
    assert published.get("maximum", published.get("maxLength")) == (len(last) if isinstance(last, str) else last)
    status, body = api.post(SESSIONS, session_payload(**{field: last}))
    assert status == 201, body
    status, body = api.post(SESSIONS, session_payload(**{field: first_refused}))
    assert status == 422 and set(body["fields"]) == {field}, body


def _form_errors(page: str) -> dict[str, str]:
    return dict(re.findall(r'<p class="field-error" id="(\w+)-error">([^<]*)</p>', page))


@pytest.mark.parametrize(
    ("field", "value"),
    [("title", "t" * (MAX_TITLE_LENGTH + 1)), ("title", "Two\x00lines"), ("title", "Two\nlines"), ("capacity", 0),
     ("duration_minutes", MAX_DURATION_MINUTES + 1), ("timezone", "Mars/Base"), ("join_link", "ftp://example.com"),
     ("cancellation_hours", MAX_CANCELLATION_HOURS + 1), ("reminder_offsets_minutes", [MIN_REMINDER_OFFSET - 1])],
)  # fmt: skip
def test_the_session_form_and_the_api_refuse_a_mistake_with_the_same_message(client, create_creator, field, value):
    status, body = Api(client, create_creator()[1]).post(SESSIONS, session_payload(**{field: value}))
    assert status == 422

    signup(client)
    typed = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    form = new_session_form(csrf_token=csrf_token(client, "/dashboard/sessions/new"), **{field: typed})
    response = client.post("/dashboard/sessions/new", data=form)
    assert response.status_code == 422
    assert _form_errors(response.get_data(as_text=True)) == body["fields"]


@pytest.mark.parametrize(
    ("name", "email"),
    [("", "bo@example.com"), ("B" * (MAX_NAME_LENGTH + 1), "bo@example.com"), ("Bo\r\nBcc: x@example.com", "x"),
     ("Bo", "b" * MAX_EMAIL_LENGTH + "@example.com"), ("Bo", "bo@example")],
)  # fmt: skip
def test_checkout_form_and_api_refuse_a_buyer_with_the_same_messages(client, published_session, name, email):
    session_id, _owner = published_session()
    page = client.get(f"/s/{session_id}").get_data(as_text=True)
    assert _attributes(page, "name")["maxlength"] == str(MAX_NAME_LENGTH)
    assert _attributes(page, "email")["maxlength"] == str(MAX_EMAIL_LENGTH)

    status, body = Api(client).post(f"{SESSIONS}/{session_id}/checkout", {"name": name, "email": email})
    assert status == 422
    form = {"csrf_token": csrf_token(client, f"/s/{session_id}"), "name": name, "email": email, "provider": "stripe"}
    response = client.post(f"/s/{session_id}/checkout", data=form)
    assert response.status_code == 422
    shown = re.findall(r'<p class="field-error" id="(\w+)-error">([^<]*)</p>', response.get_data(as_text=True))
    assert dict(shown) == body["fields"]
