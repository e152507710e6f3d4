"""Properties of the parsers that read what people and programs send: for any input, a value within bounds or a
refusal with a message, never an exception of another kind (which would be a 500).

Hypothesis runs derandomized, so CI sees the same examples every time.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from integrations.payments import order_id_from
from webinar_pay.extensions import db
from webinar_pay.limits import EARLIEST_START, LATEST_START, MAX_REMINDER_OFFSET, MAX_REMINDERS, MIN_REMINDER_OFFSET
from webinar_pay.models import LiveSession, utcnow
from webinar_pay.money import CURRENCIES, MoneyError, exponent, major_input_value, normalize_currency, to_minor
from webinar_pay.services import ValidationError
from webinar_pay.services.creators import create_creator
from webinar_pay.services.orders import start_checkout
from webinar_pay.services.schemas import READ_ONLY_FIELDS, SESSION_FIELDS, CheckoutInput, SessionInput, validate
from webinar_pay.services.sessions import create_session, parse_session_fields, publish_session
from webinar_pay.services.text import TextError, clean_text, clean_url
from webinar_pay.services.tickets import join_token, order_for_join_token, order_for_ticket_token, ticket_token
from webinar_pay.services.timezones import all_timezones
from webinar_pay.web.openapi import OPENAPI

PROPERTIES = settings(derandomize=True, database=None, deadline=None, max_examples=300)
# The app is only a context here (translations, the database for tokens): nothing it holds changes between examples.
WITH_APP = settings(PROPERTIES, max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])

currencies = st.sampled_from(CURRENCIES)
zones = st.sampled_from(all_timezones())
# Text of every kind: any code point (surrogates and NUL included), and text that looks like what is parsed.
any_text = st.text(st.characters(codec=None)) | st.text("0123456789.,-+eE _ nNaIifsT:Z", max_size=30)


# -- money -------------------------------------------------------------------------------------------------------


@PROPERTIES
@given(typed=any_text, currency=currencies)
@example(typed="1e999999", currency="EUR")
@example(typed="0e-999999999", currency="JPY")
@example(typed="sNaN", currency="EUR")
def test_a_typed_price_is_whole_minor_units_or_refused(typed, currency):
    try:
        minor = to_minor(typed, currency)
    except MoneyError:
        return
    assert isinstance(minor, int) and 0 <= minor < 10 ** (15 + exponent(currency))


@PROPERTIES
@given(minor=st.integers(0, 10**12), currency=currencies)
def test_a_price_shown_in_the_form_reads_back_as_the_same_amount(minor, currency):
    assert to_minor(major_input_value(minor, currency), currency) == minor


@PROPERTIES
@given(code=any_text | st.sampled_from(CURRENCIES).map(str.lower))
def test_a_currency_is_an_iso_4217_code_or_refused(code):
    try:
        assert normalize_currency(code) in CURRENCIES
    except MoneyError:
        assert code.strip().upper() not in CURRENCIES


# -- text --------------------------------------------------------------------------------------------------------


@PROPERTIES
@given(value=any_text, multiline=st.booleans())
@example(value="Ada\r\nBcc: everyone@example.com", multiline=False)
@example(value="A\x00B", multiline=True)
def test_accepted_text_has_no_control_characters_and_fits(value, multiline):
    try:
        cleaned = clean_text(value, max_length=120, multiline=multiline)
    except TextError:
        return
    allowed = {"\t", "\n", "\r"} if multiline else set()
    assert cleaned and len(cleaned) <= 120 and cleaned == cleaned.strip()
    assert not any((ord(c) < 32 or 0x7F <= ord(c) <= 0x9F) and c not in allowed for c in cleaned)
    assert not any(0xD800 <= ord(c) <= 0xDFFF for c in cleaned)
    cleaned.encode()  # what PostgreSQL and SMTP receive


@PROPERTIES
@given(value=any_text | st.from_regex(r"\Ahttps?://[!-~]{1,40}\Z"))
def test_an_accepted_link_is_one_the_published_schema_allows(value):
    try:
        url = clean_url(value)
    except TextError:
        return
    published = OPENAPI["components"]["schemas"]["SessionInput"]["properties"]["join_link"]
    assert re.search(published["pattern"], url) and len(url) <= published["maxLength"]
    assert url.isascii() and " " not in url


# -- session times and reminders ----------------------------------------------------------------------------------


def _parse(**fields):
    return parse_session_fields(fields, current=None)


def _valid(**overrides) -> dict:
    fields = {"title": "T", "starts_at": (utcnow() + timedelta(days=3)).isoformat(), "timezone": "Europe/Paris",
              "duration_minutes": 60, "price": 0, "currency": "EUR", "capacity": 5, "platform": "link",
              "join_link": "https://meet.example.com/x"}  # fmt: skip
    return {**fields, **overrides}


def _starts_at_or_refusal(app, **overrides):
    with app.test_request_context():
        try:
            return _parse(**_valid(**overrides))["starts_at"], None
        except ValidationError as error:
            assert set(error.fields) == {"starts_at"}, error.fields
            return None, error.fields["starts_at"]


@WITH_APP
@given(
    starts_at=any_text
    | st.datetimes().map(datetime.isoformat)  # wall-clock times, read in the zone
    | st.datetimes(timezones=st.timezones()).map(datetime.isoformat),  # instants with any offset
    zone=zones,
)
@example(starts_at="9999-12-31T23:30:00+00:00", zone="Europe/Paris")
@example(starts_at="0001-01-01T00:30:00+01:00", zone="UTC")
@example(starts_at="9999-12-31T23:59", zone="Pacific/Kiritimati")
def test_any_start_is_a_utc_instant_within_the_window_or_refused(demo_app, starts_at, zone):
    before = utcnow()
    parsed, _refusal = _starts_at_or_refusal(demo_app, starts_at=starts_at, timezone=zone)
    if parsed is not None:
        assert parsed.tzinfo is not None and parsed.utcoffset() == timedelta(0)
        assert before - EARLIEST_START <= parsed <= utcnow() + LATEST_START


@WITH_APP
@given(
    offset=st.timedeltas(timedelta(days=-1, minutes=5), LATEST_START - timedelta(days=1)),
    utc_offset_minutes=st.integers(-14 * 60, 14 * 60),
)
def test_a_start_with_an_offset_is_that_instant(demo_app, offset, utc_offset_minutes):
    instant = (utcnow() + offset).replace(microsecond=0)
    written = instant.astimezone(timezone(timedelta(minutes=utc_offset_minutes))).isoformat()
    parsed, refusal = _starts_at_or_refusal(demo_app, starts_at=written)
    assert refusal is None and parsed == instant


@WITH_APP
@given(days=st.integers(0, 5 * 365 - 1), minute_of_day=st.integers(0, 24 * 60 - 1), zone=zones)
def test_a_wall_clock_start_is_read_in_the_zone_and_a_dst_gap_is_refused(demo_app, days, minute_of_day, zone):
    day = (utcnow() + timedelta(days=1 + days)).date()
    wall = datetime(day.year, day.month, day.day) + timedelta(minutes=minute_of_day)
    parsed, refusal = _starts_at_or_refusal(demo_app, starts_at=wall.strftime("%Y-%m-%dT%H:%M"), timezone=zone)
    round_trip = wall.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    if round_trip != wall:  # the clocks skip this wall time
        assert parsed is None and "clocks change" in refusal
    else:
        assert refusal is None and parsed.astimezone(ZoneInfo(zone)).replace(tzinfo=None) == wall


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=12) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=30,
)


@WITH_APP
@given(offsets=json_values | st.lists(st.integers(-10, 50_000), max_size=15))
@example(offsets=list(range(5, 1005)))
@example(offsets=list(range(1, 43_201)))
def test_reminders_are_a_few_sane_offsets_or_refused(demo_app, offsets):
    with demo_app.test_request_context():
        try:
            reminders = _parse(**_valid(reminder_offsets_minutes=offsets))["reminder_offsets"]
        except ValidationError as error:
            assert set(error.fields) == {"reminder_offsets_minutes"}, error.fields
            return
    assert len(reminders) <= MAX_REMINDERS and reminders == sorted(set(reminders), reverse=True)
    assert all(MIN_REMINDER_OFFSET <= minutes <= MAX_REMINDER_OFFSET for minutes in reminders)
    assert offsets is None or len(offsets) <= MAX_REMINDERS


# -- whole bodies, through the input models ----------------------------------------------------------------------

# What pydantic would say: none of it may reach a person.
PYDANTIC_WORDING = re.compile(r"Input should|Value error|Field required|Extra inputs|validation error|pydantic", re.I)


def _bodies(fields: tuple[str, ...], sensible: dict) -> st.SearchStrategy[dict]:
    """Bodies of the model's fields, read-only and unknown names, with sensible values or any JSON value."""
    names = st.sampled_from([*fields, *READ_ONLY_FIELDS, "colour"]) | st.text(max_size=5)
    return st.dictionaries(names, st.sampled_from(list(sensible.values())) | json_values, max_size=len(fields) + 2)


def _assert_refusals_speak_for_each_field(fields: dict[str, str], sent: dict) -> None:
    assert fields, "a refusal names the fields to correct"
    for name, message in fields.items():
        assert isinstance(message, str) and message and not PYDANTIC_WORDING.search(message), (name, message)
        assert name in sent or name in SessionInput.model_fields or name in CheckoutInput.model_fields, name


def _stored_session() -> LiveSession:
    starts = utcnow() + timedelta(days=3)
    return LiveSession(**{**_parse(**_valid(starts_at=starts.isoformat())), "seats_taken": 0})


@WITH_APP
@given(body=_bodies(SESSION_FIELDS, _valid()), stored=st.booleans())
@example(body=_valid(), stored=False)
@example(body={"title": None, "id": 1, "status": "x"}, stored=True)
def test_any_session_body_is_read_or_refused_with_a_message_per_field(demo_app, body, stored):
    """Creating (no stored session) or changing one: columns to store, or a 422 naming each field to correct."""
    with demo_app.test_request_context():
        current = _stored_session() if stored else None
        try:
            columns = parse_session_fields(body, current=current)
        except ValidationError as error:
            _assert_refusals_speak_for_each_field(error.fields, body)
            return
    assert set(columns) <= set(SESSION_FIELDS) - {"reminder_offsets_minutes"} | {"reminder_offsets"}
    assert current is not None or {"title", "starts_at", "price", "currency", "capacity"} <= set(columns)


@WITH_APP
@given(body=_bodies(tuple(CheckoutInput.model_fields), {"name": "Bo", "email": "bo@example.com", "provider": "stripe"}))
@example(body={"name": None, "email": None})
def test_any_checkout_body_is_a_buyer_or_refused_with_a_message_per_field(demo_app, body):
    with demo_app.test_request_context():
        try:
            buyer = validate(CheckoutInput, body)
        except ValidationError as error:
            _assert_refusals_speak_for_each_field(error.fields, body)
            return
    assert buyer.name == buyer.name.strip() and "@" in buyer.email and buyer.email == buyer.email.lower()
    assert buyer.provider in (None, "stripe", "paypal", "sandbox")


# -- ticket tokens ------------------------------------------------------------------------------------------------


@pytest.fixture
def ticket(demo_app) -> tuple[str, str, int]:
    """A real order's ticket and join tokens and its id, so that near misses of valid tokens are tried too."""
    with demo_app.test_request_context():
        creator = create_creator("tokens@example.com", "Tia Token", "correct horse battery", "UTC")
        session = publish_session(create_session(creator, _valid(price=0)))
        order = start_checkout(session, "Bo", "bo@example.com", "sandbox").order
        return ticket_token(order), join_token(order), order.id


near_misses = st.builds(
    lambda head, tail: head + tail, st.sampled_from(["1.", "²", "1", "99999999999999999999."]), any_text
)


@settings(WITH_APP, report_multiple_bugs=False)
@given(data=st.data())
def test_any_string_is_an_order_s_token_or_none(demo_app, ticket, data):
    """Ticket and join tokens alike; and neither kind opens what the other opens."""
    real_ticket, real_join, order_id = ticket
    real = st.sampled_from([real_ticket, real_join])
    token = data.draw(any_text | near_misses | st.text(real_ticket, max_size=60) | real, label="token")
    with demo_app.test_request_context():
        order = order_for_ticket_token(token)
        assert order is None or (token == real_ticket and order.id == order_id)
        order = order_for_join_token(token)
        assert order is None or (token == real_join and order.id == order_id)
        db.session.rollback()


# -- ids handed back by providers ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)


@settings(derandomize=True)
@given(value=json_values | st.sampled_from(["²", "١٢", "0042", "12345678901", "7"]))
@example(value="42")
def test_an_order_id_from_a_provider_is_a_plain_number_or_none(value):
    """Metadata and `custom_id` come back from Stripe and PayPal as they were stored: anything else means no order."""
    order_id = order_id_from(value)
    assert order_id is None or (str(value).isascii() and str(value).isdigit() and order_id == int(str(value)))
