from datetime import UTC, datetime

import pytest

from webinar_pay.money import MoneyError, format_amount, major_input_value, normalize_currency, to_minor
from webinar_pay.services.timezones import NonexistentLocalTime, is_valid_timezone, local_to_utc


@pytest.mark.parametrize(
    ("typed", "currency", "minor"),
    [
        ("25.00", "EUR", 2500),
        ("25", "EUR", 2500),
        ("19,99", "EUR", 1999),
        ("3000", "JPY", 3000),
        ("1.234", "KWD", 1234),
        ("0", "USD", 0),
    ],
)
def test_prices_become_minor_units_by_the_currency_exponent(typed, currency, minor):
    assert to_minor(typed, currency) == minor


@pytest.mark.parametrize(("typed", "currency"), [("10.5", "JPY"), ("1.001", "EUR"), ("-1", "EUR"), ("ten", "EUR")])
def test_impossible_prices_are_refused(typed, currency):
    with pytest.raises(MoneyError):
        to_minor(typed, currency)


def test_currency_codes_are_checked_against_iso_4217():
    assert normalize_currency(" usd ") == "USD"
    with pytest.raises(MoneyError):
        normalize_currency("EURO")
    with pytest.raises(MoneyError):
        normalize_currency("XYZ")


def test_amounts_are_shown_with_the_right_decimals():
    assert format_amount(2500, "EUR") == "€25.00"
    assert format_amount(3000, "JPY") == "¥3,000"
    assert major_input_value(3000, "JPY") == "3000"
    assert major_input_value(1999, "EUR") == "19.99"


def test_local_wall_time_is_stored_as_utc_across_dst():
    winter = local_to_utc(datetime(2027, 1, 10, 18, 0), "Europe/Paris")
    summer = local_to_utc(datetime(2027, 7, 10, 18, 0), "Europe/Paris")
    assert winter == datetime(2027, 1, 10, 17, 0, tzinfo=UTC)
    assert summer == datetime(2027, 7, 10, 16, 0, tzinfo=UTC)


def test_a_time_skipped_by_the_clock_change_is_refused():
    with pytest.raises(NonexistentLocalTime):
        local_to_utc(datetime(2027, 3, 28, 2, 30), "Europe/Paris")


def test_time_zones_must_be_iana_names():
    assert is_valid_timezone("America/New_York")
    assert not is_valid_timezone("Mars/Olympus")
    assert not is_valid_timezone("")
