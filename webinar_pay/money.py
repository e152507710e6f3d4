"""Amounts are integers in the currency's minor unit; the ISO 4217 exponent decides the scale."""

from decimal import Decimal, InvalidOperation

from babel.numbers import format_currency, get_currency_precision, list_currencies

_KNOWN_CURRENCIES = frozenset(list_currencies())


class MoneyError(ValueError):
    pass


def normalize_currency(code: str) -> str:
    code = (code or "").strip().upper()
    if len(code) != 3 or code not in _KNOWN_CURRENCIES:
        raise MoneyError(f"{code or 'empty'} is not an ISO 4217 currency code")
    return code


def exponent(currency: str) -> int:
    """Digits after the decimal point: 2 for EUR, 0 for JPY, 3 for KWD."""
    return get_currency_precision(currency)


def to_minor(amount: str, currency: str) -> int:
    """'25.50' EUR -> 2550; refuses more decimals than the currency has ('10.5' JPY is an error)."""
    try:
        value = Decimal(str(amount).strip().replace(",", "."))
    except InvalidOperation:
        raise MoneyError(f"{amount!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise MoneyError("the price must be zero or more")
    try:
        scaled = value.scaleb(exponent(currency))
    except ArithmeticError:  # decimal.Overflow: '1e999999' is a finite Decimal, but not once scaled
        raise MoneyError(f"{amount!r} is too large") from None
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{currency} has {exponent(currency)} decimal places")
    return int(scaled)


def to_major(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-exponent(currency))


def format_amount(minor: int, currency: str, locale: str = "en") -> str:
    return format_currency(to_major(minor, currency), currency, locale=locale)


def major_input_value(minor: int, currency: str) -> str:
    """The price as a creator types it in a form: '25.00', '3000'."""
    return f"{to_major(minor, currency):.{exponent(currency)}f}"
