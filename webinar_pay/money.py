"""Amounts are integers in the currency's minor unit; the ISO 4217 exponent decides the scale."""

from decimal import Decimal, InvalidOperation

from babel.numbers import format_currency, get_currency_precision, list_currencies

from .limits import MAX_MAJOR_DIGITS, MAX_TYPED_AMOUNT_LENGTH

# The ISO 4217 codes Babel knows, current and historic; the OpenAPI document enumerates the same list.
CURRENCIES: tuple[str, ...] = tuple(sorted(list_currencies()))
_KNOWN_CURRENCIES = frozenset(CURRENCIES)


class MoneyError(ValueError):
    pass


def normalize_currency(code: str) -> str:
    """A currency code as a person types it (any case, surrounding spaces) in its ISO 4217 spelling."""
    code = code.strip().upper() if isinstance(code, str) else ""
    if len(code) != 3 or code not in _KNOWN_CURRENCIES:
        raise MoneyError(f"{code or 'empty'} is not an ISO 4217 currency code")
    return code


def exponent(currency: str) -> int:
    """Digits after the decimal point: 2 for EUR, 0 for JPY, 3 for KWD."""
    return get_currency_precision(currency)


def to_minor(amount: str, currency: str) -> int:
    """'25.50' EUR -> 2550; refuses more decimals than the currency has ('10.5' JPY is an error)."""
    typed = str(amount).strip().replace(",", ".")
    if len(typed) > MAX_TYPED_AMOUNT_LENGTH:
        raise MoneyError("this amount is too large")
    try:
        value = Decimal(typed)
    except InvalidOperation:
        raise MoneyError(f"{typed!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise MoneyError("the price must be zero or more")
    if value and value.adjusted() >= MAX_MAJOR_DIGITS:
        raise MoneyError("this amount is too large")
    try:
        scaled = value.scaleb(exponent(currency))
        whole = scaled == scaled.to_integral_value()
    except ArithmeticError:  # an exponent far below the currency's decimals
        whole = False
    if not whole:
        raise MoneyError(f"{currency} has {exponent(currency)} decimal places")
    return int(scaled)


def to_major(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-exponent(currency))


def format_amount(minor: int, currency: str, locale: str = "en") -> str:
    return format_currency(to_major(minor, currency), currency, locale=locale)


def major_input_value(minor: int, currency: str) -> str:
    """The price as a creator types it in a form: '25.00', '3000'."""
    return f"{to_major(minor, currency):.{exponent(currency)}f}"
