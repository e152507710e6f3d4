"""What creators and buyers send, declared once as pydantic models: each field's rule, the message that refuses it,
and its JSON Schema, which the OpenAPI document publishes as it is (`web/openapi.py`).

Values are JSON values, read strictly: numbers are numbers (a whole `2.0` is 2), text is text; the HTML forms turn
what they post into such values first (`web/dashboard.py`). pydantic's own messages reach nobody: `read` gives each
refused field the message it declares (`Refusal`), or the one its rule raised (`TextError`), translated for the
request. Rules that need the stored session or the clock (a start's time zone and window, the platform's link) are
the sessions service's. The models are built once, at import.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Literal, TypeVar, get_args

from flask_babel import gettext as _
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, create_model
from pydantic import ValidationError as PydanticValidationError
from pydantic.fields import FieldInfo

from ..limits import (
    MAX_CANCELLATION_HOURS,
    MAX_CAPACITY,
    MAX_DESCRIPTION_LENGTH,
    MAX_DISCOUNT_CODE_LENGTH,
    MAX_DISCOUNT_USES,
    MAX_DURATION_MINUTES,
    MAX_EMAIL_LENGTH,
    MAX_ID,
    MAX_NAME_LENGTH,
    MAX_PRICE,
    MAX_REMINDER_OFFSET,
    MAX_REMINDERS,
    MAX_TITLE_LENGTH,
    MAX_URL_LENGTH,
    MAX_ZOOM_MEETING_ID_DIGITS,
    MIN_DISCOUNT_CODE_LENGTH,
    MIN_REMINDER_OFFSET,
    MIN_ZOOM_MEETING_ID_DIGITS,
)
from ..locales import SUPPORTED_LOCALES
from ..models import Platform
from ..money import CURRENCIES
from . import ValidationError
from .payments import providers
from .personal_data import CONSENT_PURPOSES
from .text import (
    ONE_LINE_PATTERN,
    SEVERAL_LINES_PATTERN,
    URL_OUTLINE_PATTERN,
    TextError,
    clean_text,
    clean_url,
    email_address,
    person_name,
)
from .timezones import is_valid_timezone


class Refusal:
    """The message a field answers with when its value is refused (`refused`: a wrong type, a bound, a choice; unless
    its rule raised a `TextError`, which says more) or missing (`required`, also for null where null means nothing).

    Messages are callables, so that they are translated for the request that needs one.
    """

    def __init__(self, refused: Callable[[], str] | None = None, required: Callable[[], str] | None = None):
        self.refused = refused or (lambda: _("Enter a valid value."))
        self.required = required or (lambda: _("This field is required."))


def _whole(value: Any) -> Any:
    """JSON has one kind of number: a whole 2.0 is 2. Anything else goes on to the strict integer check."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _whole_number(low: int, high: int, refused: Callable[[], str] | None = None, **schema: Any) -> tuple[Any, Any]:
    """The JSON Schema of a whole number within [low, high] (for answers), and the field that reads one."""
    shape = Annotated[int, Field(ge=low, le=high, **schema)]
    message = refused or (lambda: _("Enter a whole number from %(low)d to %(high)d.", low=low, high=high))
    return shape, Annotated[shape, BeforeValidator(_whole), Refusal(message)]


def _one_of(values: tuple[str, ...]) -> Any:
    """`Literal` of values known at run time (a JSON Schema `enum`)."""
    return Literal.__getitem__(values)


# -- the fields of a session -------------------------------------------------------------------------------------------

DEFAULT_REMINDER_OFFSETS = (1440, 60)
# The API takes a currency code in upper or lower case; a form may also type it in mixed case (see the dashboard).
CURRENCY_CODES = (*CURRENCIES, *(code.lower() for code in CURRENCIES))
PLATFORMS = tuple(platform.value for platform in Platform)
ZOOM_KINDS = ("meeting", "webinar")
# The platforms that need a link of the creator's, and the field that holds it.
PLATFORM_REFERENCES = {Platform.YOUTUBE.value: "youtube_url", Platform.LINK.value: "join_link"}
# What the API returns about a session but nobody sets; sent back in a PATCH, they are ignored.
READ_ONLY_FIELDS = ("id", "status", "seats_taken", "seats_left", "public_url")
# ISO 8601 as the API takes it; the OpenAPI document publishes these patterns as they are.
STARTS_AT_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?$"
)
_STARTS_AT = re.compile(STARTS_AT_PATTERN)
ZOOM_MEETING_ID_PATTERN = rf"^(?:(?: *[0-9]){{{MIN_ZOOM_MEETING_ID_DIGITS},{MAX_ZOOM_MEETING_ID_DIGITS}}})? *$"


def enter_a_start() -> str:
    return _("Enter a date and time such as 2026-05-04T18:30:00+02:00.")


def _title(value: Any) -> str:
    title = clean_text(value, max_length=MAX_TITLE_LENGTH, required=False)
    if not title:
        raise TextError(_("Use between 1 and %(n)d characters.", n=MAX_TITLE_LENGTH))
    return title


def _description(value: Any) -> str:
    return clean_text(value, max_length=MAX_DESCRIPTION_LENGTH, multiline=True, required=False)


def _starts_at(value: Any) -> datetime:
    """An instant (with an offset) in UTC, or a wall-clock time (none), which the session's time zone places."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and _STARTS_AT.fullmatch(value):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        raise ValueError(value)
    try:
        return parsed if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:  # an offset that moves it off the calendar
        raise ValueError(value) from None


def _zone(value: str) -> str:
    if not is_valid_timezone(value):
        raise ValueError(value)
    return value


def _zoom_meeting_id(value: Any) -> str | None:
    """MIN_ to MAX_ZOOM_MEETING_ID_DIGITS digits, as text (spaces ignored) or a number; blank text is no ID."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(value)
    digits = value.replace(" ", "")
    if not digits:
        return None
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(value)
    if not MIN_ZOOM_MEETING_ID_DIGITS <= len(digits) <= MAX_ZOOM_MEETING_ID_DIGITS:
        raise ValueError(value)
    return digits


def _largest_first(offsets: list[int]) -> list[int]:
    return sorted(set(offsets), reverse=True)


def _whole_items(value: Any) -> Any:
    return [_whole(item) for item in value] if isinstance(value, list) else value


TitleShape = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_TITLE_LENGTH,
        pattern=ONE_LINE_PATTERN,
        description="One line, no control characters; surrounding spaces are trimmed.",
    ),
]
Title = Annotated[str, PlainValidator(_title, json_schema_input_type=TitleShape)]
Description = Annotated[
    str,
    PlainValidator(
        _description,
        json_schema_input_type=Annotated[str, Field(max_length=MAX_DESCRIPTION_LENGTH, pattern=SEVERAL_LINES_PATTERN)],
    ),
]
StartsAt = Annotated[
    datetime,
    PlainValidator(_starts_at, json_schema_input_type=Annotated[str, Field(pattern=STARTS_AT_PATTERN)]),
    Field(
        description=(
            "ISO 8601 date and time. With an offset (`Z`, `+02:00`) it is that instant; without one it is a wall-clock "
            "time in `timezone`, refused if the clocks skip it (DST gap). A new start (creating, or moving a session) "
            "lies between a day ago and five years from now; a time in the past is accepted, but such a session "
            "cannot be published."
        ),
        examples=["2030-06-01T18:30:00+02:00", "2030-06-01T18:30"],
    ),
    Refusal(enter_a_start),
]
TimeZoneShape = Annotated[
    str,
    Field(description="IANA time zone the session is announced in; buyers see times in it.", examples=["Europe/Paris"]),
]
TimeZone = Annotated[
    TimeZoneShape, AfterValidator(_zone), Refusal(lambda: _("Choose an IANA time zone such as Europe/Paris."))
]
DurationShape, Duration = _whole_number(1, MAX_DURATION_MINUTES, description="Length in minutes.")
PriceShape, Price = _whole_number(
    0,
    MAX_PRICE,
    lambda: _("Enter the price in minor units (cents), zero for a free session."),
    description="Seat price in minor units of `currency` (cents; yen for JPY). 0 makes a free session.",
    examples=[2500],
)
CapacityShape, Capacity = _whole_number(1, MAX_CAPACITY, description="Number of seats.")
CancellationHoursShape, CancellationHours = _whole_number(
    0, MAX_CANCELLATION_HOURS, lambda: _("Enter 0 to %(n)d hours, or leave it empty.", n=MAX_CANCELLATION_HOURS)
)
Currency = Annotated[
    _one_of(CURRENCY_CODES),
    Field(description="ISO 4217 code, upper or lower case; stored upper case.", examples=["EUR"]),
    AfterValidator(str.upper),
    Refusal(lambda: _("Enter an ISO 4217 currency code such as EUR.")),
]
PlatformShape = Annotated[
    _one_of(PLATFORMS),
    Field(description="Where the session happens: a Zoom meeting or webinar, a YouTube live stream, or any join link."),
]
PlatformName = Annotated[PlatformShape, Refusal(lambda: _("Choose zoom, youtube or link."))]
ZoomKindShape = Annotated[_one_of(ZOOM_KINDS), Field(description="Zoom only; `meeting` by default.")]
ZoomKind = Annotated[ZoomKindShape, Refusal(lambda: _("Choose meeting or webinar."))]
ZoomMeetingId = Annotated[
    str,
    PlainValidator(
        _zoom_meeting_id,
        json_schema_input_type=Annotated[str, Field(pattern=ZOOM_MEETING_ID_PATTERN)]
        | Annotated[
            int, Field(ge=10 ** (MIN_ZOOM_MEETING_ID_DIGITS - 1), le=10**MAX_ZOOM_MEETING_ID_DIGITS - 1)
        ],  # sent as a number
    ),
    Refusal(
        lambda: _(
            "Enter the Zoom meeting or webinar ID (%(low)d to %(high)d digits).",
            low=MIN_ZOOM_MEETING_ID_DIGITS,
            high=MAX_ZOOM_MEETING_ID_DIGITS,
        )  # fmt: skip
    ),
]
UrlShape = Annotated[str, Field(json_schema_extra={"format": "uri"})]
Url = Annotated[
    str,
    PlainValidator(
        clean_url,
        json_schema_input_type=Annotated[
            str,
            Field(
                max_length=MAX_URL_LENGTH,
                # The outline of `text.URL_PATTERN` (what the server checks in full): cheaper for schema tools.
                pattern=URL_OUTLINE_PATTERN,
                json_schema_extra={"format": "uri"},
                description=(
                    "A full http:// or https:// address as RFC 3986 writes it: ASCII, no spaces, `%` + two hex digits."
                ),
            ),
        ],
    ),
]
REMINDERS_DESCRIPTION = (
    f"Reminder emails, in minutes before the start: at most {MAX_REMINDERS}, each {MIN_REMINDER_OFFSET} minutes "
    f"to {MAX_REMINDER_OFFSET // (24 * 60)} days. Duplicates are dropped; returned largest first."
)
RemindersShape = Annotated[
    list[Annotated[int, Field(ge=MIN_REMINDER_OFFSET, le=MAX_REMINDER_OFFSET)]],
    Field(max_length=MAX_REMINDERS, description=REMINDERS_DESCRIPTION, examples=[list(DEFAULT_REMINDER_OFFSETS)]),
]
Reminders = Annotated[
    RemindersShape,
    BeforeValidator(_whole_items),
    AfterValidator(_largest_first),
    Refusal(
        lambda: _(
            "Enter at most %(n)d reminders, each %(low)d to %(high)d minutes before the start, such as 1440, 60.",
            n=MAX_REMINDERS,
            low=MIN_REMINDER_OFFSET,
            high=MAX_REMINDER_OFFSET,
        )  # fmt: skip
    ),
]


def _read_only_properties(schema: dict[str, Any]) -> None:
    schema["properties"].update({name: {"readOnly": True} for name in READ_ONLY_FIELDS})


def _platform_references(schema: dict[str, Any]) -> None:
    """A session on a platform that needs a link is created with it (not null)."""
    schema["allOf"] = [
        {
            "if": {"properties": {"platform": {"const": platform}}, "required": ["platform"]},
            "then": {"required": [field], "properties": {field: {"type": "string"}}},
        }
        for platform, field in PLATFORM_REFERENCES.items()
    ]


class Input(BaseModel):
    """JSON values read strictly; a field the model does not know is refused."""

    model_config = ConfigDict(strict=True, extra="forbid")


class SessionPatch(Input):
    """Any subset of the session's fields; unknown fields are refused (422). A Session as returned may be sent back
    whole: its read-only fields (id, status, seats_taken, seats_left, public_url) are ignored."""

    model_config = ConfigDict(json_schema_extra=_read_only_properties)

    # A field below that is not nullable refuses null (it cannot be cleared); one that is takes null as "unchanged",
    # or as "none" where it says so.
    title: Title = None
    description: Description | None = Field(
        None,
        description="Markdown, shown on the session page (raw HTML is shown as text; links and same-site images only; "
        "no control characters but tab and line breaks); null empties it.",
    )
    starts_at: StartsAt = None
    timezone: TimeZone = None
    duration_minutes: Duration = None
    price: Price = None
    currency: Currency = None
    capacity: Capacity = None
    platform: PlatformName = None
    zoom_meeting_id: ZoomMeetingId | None = Field(
        None,
        description=(
            f"Zoom meeting or webinar ID, {MIN_ZOOM_MEETING_ID_DIGITS} to {MAX_ZOOM_MEETING_ID_DIGITS} digits (as "
            "text, spaces ignored, or a number). It must require registration with manual approval (checked at "
            "publish). Left out, null or blank for a zoom session: the ID the session has, else the app schedules the "
            "meeting at publish. Checked whatever the platform."
        ),
        examples=["123 4567 8901"],
    )
    zoom_kind: ZoomKind | None = Field(None, description="Zoom only; `meeting` by default (null: unchanged).")
    youtube_url: Url | None = Field(
        None, description="Required when `platform` is youtube (checked whatever the platform); null: unchanged."
    )
    join_link: Url | None = Field(
        None, description="Required when `platform` is link; sent to buyers once they have paid. Null: unchanged."
    )
    replay_url: Url | None = Field(None, description="A recording, sent with the thank-you email; null removes it.")
    reminder_offsets_minutes: Reminders | None = Field(
        None,
        description=f"{REMINDERS_DESCRIPTION} Default {list(DEFAULT_REMINDER_OFFSETS)}; null or [] for none.",
    )
    cancellation_hours: CancellationHours | None = Field(
        None,
        description=(
            "Attendees may cancel from their ticket page for a full, automatic refund until this many hours before "
            "the start; shown before purchase. Null (the default): no self-cancellation."
        ),
    )


class SessionInput(SessionPatch):
    """Unknown fields are refused (422). Fields of another platform are ignored."""

    model_config = ConfigDict(json_schema_extra=_platform_references)

    title: Title
    starts_at: StartsAt
    timezone: TimeZone
    duration_minutes: Duration
    price: Price
    currency: Currency
    capacity: Capacity
    platform: PlatformName


SESSION_FIELDS = tuple(SessionPatch.model_fields)


# -- a buyer ---------------------------------------------------------------------------------------------------------

# The payment methods a checkout may name; a deployment offers some of them (`sandbox` in demo mode only).
CHECKOUT_PROVIDERS = ("stripe", "paypal", "sandbox")

NameShape = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=ONE_LINE_PATTERN)]
EmailShape = Annotated[str, Field(json_schema_extra={"format": "email"})]


class CheckoutInput(Input):
    model_config = ConfigDict(extra="ignore")

    name: Annotated[
        str,
        PlainValidator(person_name, json_schema_input_type=NameShape),
        Field(description="The attendee's name: one line, no control characters."),
        Refusal(required=lambda: _("Enter your name.")),
    ]
    email: Annotated[
        str,
        PlainValidator(
            email_address,
            json_schema_input_type=Annotated[EmailShape, Field(max_length=MAX_EMAIL_LENGTH)],
        ),
        Refusal(required=lambda: _("Enter a valid email address.")),
    ]
    provider: Annotated[
        _one_of(CHECKOUT_PROVIDERS) | None,
        Field(
            description=(
                "How the buyer pays; left out or null, the first method this deployment offers (Stripe, then PayPal; "
                "`sandbox` in demo mode only). One it does not offer is a 422 on `provider`. Ignored for a free "
                "session."
            )
        ),
        Refusal(lambda: _("Choose one of: %(choices)s.", choices=", ".join(providers()))),
    ] = None
    locale: Annotated[
        _one_of(SUPPORTED_LOCALES) | None,
        Field(
            description=(
                "The buyer's language: the provider's payment page, the ticket page and every email of the order are "
                "in it. Left out or null: the best match of the request's `Accept-Language`, else `en`."
            )
        ),
        Refusal(lambda: _("Choose one of: %(choices)s.", choices=", ".join(SUPPORTED_LOCALES))),
    ] = None
    timezone: Annotated[
        Annotated[str, Field(max_length=64)] | None,
        AfterValidator(lambda zone: zone if zone is None else _zone(zone)),
        Field(
            description=(
                "The buyer's own IANA time zone (a browser's `Intl.DateTimeFormat().resolvedOptions().timeZone`): "
                "emails show the session's time in it too, when it differs from the session's zone."
            ),
            examples=["America/Toronto"],
        ),
        Refusal(lambda: _("Choose an IANA time zone such as Europe/Paris.")),
    ] = None
    consents: Annotated[
        list[_one_of(CONSENT_PURPOSES)] | None,
        Field(
            max_length=len(CONSENT_PURPOSES),
            description=(
                "The optional emails the buyer agreed to, each only if they ticked its box (unticked by default): "
                "`checkout_recovery` (one reminder if they do not finish paying), `creator_news` (news of the "
                "creator's future sessions). Left out, null or empty: none. Stored with the order (what, when, from "
                "where) and shown in the attendee's data export."
            ),
        ),
        Refusal(lambda: _("Choose among: %(choices)s.", choices=", ".join(CONSENT_PURPOSES))),
    ] = None
    discount_code: Annotated[
        Annotated[str, Field(max_length=4 * MAX_DISCOUNT_CODE_LENGTH)] | None,
        Field(
            description=(
                "A discount code of the session's creator, in any case. The price is computed by the server and sent "
                "to the provider; an unknown, expired, not yet valid or used-up code is a 422 `discount_code_invalid` "
                "whose message says which. A code that makes the seat free needs no provider."
            ),
            examples=["LAUNCH20"],
        ),
        Refusal(lambda: _("This discount code does not exist.")),
    ] = None


# -- discount codes ----------------------------------------------------------------------------------------------------

DISCOUNT_CODE_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9_-]{{{MIN_DISCOUNT_CODE_LENGTH - 1},{MAX_DISCOUNT_CODE_LENGTH - 1}}}$"
_DISCOUNT_CODE = re.compile(DISCOUNT_CODE_PATTERN)


def discount_code_text(value: Any) -> str:
    """A code as creators write it and buyers type it: surrounding spaces trimmed, compared (and kept) upper case."""
    if not isinstance(value, str) or len(value) > 4 * MAX_DISCOUNT_CODE_LENGTH:
        raise ValueError(value)
    code = value.strip()
    if not (code.isascii() and _DISCOUNT_CODE.fullmatch(code)):
        raise ValueError(value)
    return code.upper()


def enter_a_code() -> str:
    return _(
        "Use %(low)d to %(high)d letters, digits, - or _, starting with a letter or a digit.",
        low=MIN_DISCOUNT_CODE_LENGTH,
        high=MAX_DISCOUNT_CODE_LENGTH,
    )


DiscountCodeShape = Annotated[str, Field(pattern=DISCOUNT_CODE_PATTERN, examples=["LAUNCH20"])]
PercentOffShape, PercentOff = _whole_number(1, 100, description="A percentage of the price, 1 to 100 (100: free).")
AmountOffShape, AmountOff = _whole_number(
    1,
    MAX_PRICE,
    lambda: _("Enter the amount off in minor units (cents), at least 1."),
    description="An amount off the price, in minor units of `currency`; a larger one than the price makes it free.",
)
MaxUsesShape, MaxUses = _whole_number(
    1, MAX_DISCOUNT_USES, description="How many orders may use the code; null: no limit."
)
CodeTime = Annotated[
    datetime,
    PlainValidator(_starts_at, json_schema_input_type=Annotated[str, Field(pattern=STARTS_AT_PATTERN)]),
    Field(
        description=("ISO 8601 date and time; without an offset, a wall-clock time in your account's time zone."),
        examples=["2030-06-01T00:00:00+02:00"],
    ),
    Refusal(enter_a_start),
]


class DiscountCodeInput(Input):
    """A new code. Exactly one of `percent_off` and `amount_off`; unknown fields are refused (422)."""

    code: Annotated[
        str,
        PlainValidator(discount_code_text, json_schema_input_type=DiscountCodeShape),
        Field(
            description=(
                f"{MIN_DISCOUNT_CODE_LENGTH} to {MAX_DISCOUNT_CODE_LENGTH} ASCII letters, digits, `-` or `_`. "
                "Buyers may type it in any case; it is stored upper case and unique among your codes."
            )
        ),
        Refusal(enter_a_code, required=enter_a_code),
    ]
    percent_off: PercentOff | None = None
    amount_off: AmountOff | None = None
    currency: Currency | None = Field(
        None,
        description=(
            "The currency of `amount_off`: required with it, unless `session_id` is given (then it is the session's)."
        ),
    )
    session_id: Annotated[int, Field(ge=1, le=MAX_ID), Refusal(lambda: _("No such session."))] | None = Field(
        None, description="One of your sessions; null: all your sessions."
    )
    max_uses: MaxUses | None = None
    starts_at: CodeTime | None = Field(None, description="The code works from then; null: at once.")
    expires_at: CodeTime | None = Field(None, description="The code works until then; null: no end.")


class RefundInput(Input):
    model_config = ConfigDict(extra="ignore")

    amount: Annotated[int, Field(ge=1)] | None = Field(
        None,
        description=(
            "Minor units of the order's currency; at most what is not refunded yet. Left out or null: all that is "
            "not refunded yet."
        ),
    )


# -- reading -----------------------------------------------------------------------------------------------------------

Model = TypeVar("Model", bound=Input)


def read(model: type[Model], raw: Mapping[str, Any]) -> tuple[Model, dict[str, str]]:
    """`raw` (JSON values) read by `model`, and a message for each field it refuses; never raises for the values.

    When fields are refused, the model returned holds the others (read again without them, every field optional),
    so that the rules across fields can still be checked and every mistake reported at once.
    """
    try:
        return model.model_validate(raw), {}
    except PydanticValidationError as error:
        errors = _messages(model, error)
    rest = {name: value for name, value in raw.items() if name not in errors}
    lenient = _every_field_optional(model)
    try:
        return lenient.model_validate(rest), errors
    except PydanticValidationError:  # a field's rule depends on no other field, so this is never reached
        return lenient.model_construct(), errors


def validate(model: type[Model], raw: Mapping[str, Any]) -> Model:
    """`raw` read by `model`; a refusal is a ValidationError (422) with a message for each field."""
    values, errors = read(model, raw)
    if errors:
        raise ValidationError(_("Please correct the marked fields."), fields=errors)
    return values


def _messages(model: type[Input], error: PydanticValidationError) -> dict[str, str]:
    refusals = _refusals(model)
    messages: dict[str, str] = {}
    for problem in error.errors(include_url=False):
        if not problem["loc"]:
            continue
        field = str(problem["loc"][0])
        if field not in messages:  # the first problem of a field (a list may have several) tells it
            messages[field] = _message(problem, refusals.get(field) or Refusal())
    return messages


def _message(problem: Any, refusal: Refusal) -> str:
    if problem["type"] == "extra_forbidden":
        return _("Unknown field.")
    if problem["type"] == "missing" or (problem["input"] is None and len(problem["loc"]) == 1):
        return refusal.required()
    cause = problem.get("ctx", {}).get("error")
    return cause.message if isinstance(cause, TextError) else refusal.refused()


@cache
def _refusals(model: type[Input]) -> dict[str, Refusal]:
    return {name: _refusal(field) for name, field in model.model_fields.items()}


def _refusal(field: FieldInfo) -> Refusal | None:
    """The `Refusal` among the field's annotations, nested ones included (`Annotated[..., Refusal(...)] | None`)."""
    pending = [*field.metadata, *get_args(field.annotation)]
    while pending:
        item = pending.pop(0)
        if isinstance(item, Refusal):
            return item
        pending.extend(getattr(item, "__metadata__", ()))
        pending.extend(get_args(item))
    return None


@cache
def _every_field_optional(model: type[Model]) -> type[Model]:
    if not any(field.is_required() for field in model.model_fields.values()):
        return model
    fields: dict[str, Any] = {
        name: (field.annotation, FieldInfo.merge_field_infos(field, default=None))
        for name, field in model.model_fields.items()
    }
    return create_model(f"{model.__name__}Sent", __config__=model.model_config, **fields)


# built at import, not by the first request
for _model in (SessionInput, SessionPatch, CheckoutInput, DiscountCodeInput):
    _refusals(_model)
    _every_field_optional(_model)
