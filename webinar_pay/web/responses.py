"""What the JSON API answers, declared once as pydantic models: the views shape their answers with them and the
OpenAPI document publishes their JSON Schema.

Answers are built from rows without validation (`model_construct`): what is stored was checked when it was written.
Fields shared with what creators send use the same shapes as `services.schemas`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from flask import url_for
from pydantic import BaseModel, Field

from .. import models
from ..config import settings
from ..locales import SUPPORTED_LOCALES
from ..money import CURRENCIES
from ..services.personal_data import CONSENT_PURPOSES, EXPORT_FORMAT
from ..services.schemas import (
    CHECKOUT_PROVIDERS,
    AmountOffShape,
    CancellationHoursShape,
    CapacityShape,
    DiscountCodeShape,
    DurationShape,
    EmailShape,
    MaxUsesShape,
    PercentOffShape,
    PlatformShape,
    PriceShape,
    RemindersShape,
    TimeZoneShape,
    TitleShape,
    UrlShape,
    ZoomKindShape,
)

UtcTime = Annotated[
    datetime, Field(description="An instant in UTC, ISO 8601 ending in `Z`.", examples=["2030-06-01T16:30:00Z"])
]
CurrencyCode = Annotated[str, Field(pattern="^[A-Z]{3}$")]


def _states(states: type[StrEnum]) -> Any:
    """The states of a model's state machine, as a JSON Schema `enum`."""
    return Literal.__getitem__(tuple(state.value for state in states))


class Session(BaseModel):
    id: int
    title: TitleShape
    description: str
    starts_at: UtcTime
    timezone: TimeZoneShape
    duration_minutes: DurationShape
    price: PriceShape
    currency: Annotated[Literal.__getitem__(CURRENCIES), Field(examples=["EUR"])]
    capacity: CapacityShape
    seats_taken: Annotated[int, Field(ge=0, description="Seats sold plus seats held by checkouts still pending.")]
    seats_left: Annotated[int, Field(ge=0)]
    status: Annotated[
        _states(models.SessionStatus), Field(description="Only `published` sessions that have not started are on sale.")
    ]
    platform: PlatformShape
    zoom_meeting_id: str | None
    zoom_kind: ZoomKindShape | None
    youtube_url: UrlShape | None
    join_link: UrlShape | None
    replay_url: UrlShape | None
    reminder_offsets_minutes: RemindersShape
    cancellation_hours: CancellationHoursShape | None
    public_url: Annotated[UrlShape, Field(description="The public sales page.")]


class SessionList(BaseModel):
    sessions: list[Session]


class Enrollment(BaseModel):
    status: _states(models.EnrollmentStatus)
    join_url: UrlShape | None = Field(description="Set once `enrolled`: the buyer's personal link to the session.")


class Order(BaseModel):
    id: int
    session_id: int
    name: str
    email: Annotated[EmailShape, Field(description="Lower-cased.")]
    status: Annotated[
        _states(models.OrderStatus),
        Field(description="`pending` holds a seat until `hold_expires_at`; `paid` has a seat."),
    ]
    amount: Annotated[int, Field(ge=0, description="Minor units of `currency`.")]
    currency: CurrencyCode
    provider: Annotated[
        Literal[(*CHECKOUT_PROVIDERS, "free")], Field(description="`free` for orders of free sessions.")
    ]
    hold_expires_at: UtcTime | None
    paid_at: UtcTime | None
    locale: Annotated[
        Literal[SUPPORTED_LOCALES],
        Field(description="The buyer's language, chosen at checkout: their emails and ticket page are in it."),
    ]
    timezone: str | None = Field(description="The buyer's own IANA time zone, given at checkout; null: unknown.")
    erased_at: UtcTime | None = Field(
        description="When the buyer's personal data was erased: `name` and `email` are placeholders since."
    )
    enrollment: Enrollment | None = Field(description="The buyer's way in, once paid; null before.")
    discount_code: DiscountCodeShape | None = Field(description="The discount code the buyer entered; null: none.")
    discount_amount: Annotated[
        int, Field(ge=0, description="What the code took off the session's price; `amount` is what was left to pay.")
    ]


class DiscountCode(BaseModel):
    id: int
    code: Annotated[DiscountCodeShape, Field(description="Upper case; buyers may type it in any case.")]
    percent_off: PercentOffShape | None
    amount_off: AmountOffShape | None
    currency: CurrencyCode | None = Field(description="The currency of `amount_off`; null for a percentage.")
    session_id: int | None = Field(description="The one session it is for; null: all your sessions.")
    max_uses: MaxUsesShape | None
    uses: Annotated[
        int,
        Field(
            ge=0,
            description=(
                "Orders holding a use: paid ones, and unpaid ones whose seat is still held (an unpaid order that "
                "ends gives its use back)."
            ),
        ),
    ]
    starts_at: UtcTime | None
    expires_at: UtcTime | None
    created_at: UtcTime


class DiscountCodeList(BaseModel):
    discount_codes: list[DiscountCode]


class OrderList(BaseModel):
    orders: list[Order]


class Refund(BaseModel):
    id: int
    order_id: int
    amount: Annotated[int, Field(ge=1)]
    currency: CurrencyCode
    status: Annotated[
        _states(models.RefundStatus),
        Field(
            description=(
                "`cancelled`: not sent, because other refunds already gave the money back (`last_error` says so)."
            )
        ),
    ]
    provider: Literal[CHECKOUT_PROVIDERS]
    provider_refund_id: str | None
    last_error: str | None = Field(description="Why the last attempt failed.")
    created_at: UtcTime


class RefundMade(BaseModel):
    refund: Refund
    order: Order


class CheckoutStarted(BaseModel):
    order_id: int
    status: Annotated[Literal["pending", "paid"], Field(description="`paid` at once for a free session.")]
    checkout_url: Annotated[
        UrlShape,
        Field(description="Send the buyer here: the provider's payment page, or the ticket page if free."),
    ]
    hold_expires_at: UtcTime
    access_token: Annotated[
        str, Field(description="Bearer token for GET /orders/{order_id} (`OrderAccessToken`). Keep it secret.")
    ]
    ticket_url: Annotated[UrlShape, Field(description="The buyer's ticket page: payment status, then the join link.")]


class ExportedSession(BaseModel):
    id: int
    title: str
    starts_at: UtcTime
    timezone: str
    duration_minutes: int
    organiser: str


class ExportedConsent(BaseModel):
    purpose: Literal[CONSENT_PURPOSES]
    wording: str = Field(description="The words next to the box the buyer ticked, in their language.")
    source: str = Field(description="The page (`/s/{session_id}`) or API path the buyer agreed on.")
    given_at: UtcTime


class ExportedEnrollment(BaseModel):
    status: _states(models.EnrollmentStatus)
    join_url: str | None
    attended: bool | None
    created_at: UtcTime


class ExportedEmail(BaseModel):
    kind: str
    status: _states(models.OutboxStatus)
    due_at: UtcTime
    sent_at: UtcTime | None
    to: str | None = Field(description="This and the fields below: the copy of the email as it was sent last.")
    reply_to: str | None
    subject: str | None
    text: str | None
    html: str | None
    ics: str | None


class ExportedRefund(BaseModel):
    amount: int
    currency: CurrencyCode
    status: _states(models.RefundStatus)
    reason: str
    provider_refund_id: str | None
    created_at: UtcTime


class ExportedLogEntry(BaseModel):
    at: UtcTime
    from_status: str | None
    to_status: str
    actor: str
    note: str


class ExportedProviderEvent(BaseModel):
    provider: str
    type: str
    received_at: UtcTime
    payload: Any = Field(description="The event as the provider sent it (payer details erased with the attendee).")


class ExportedOrder(BaseModel):
    id: int
    session: ExportedSession
    name: str
    email: str
    status: _states(models.OrderStatus)
    amount: int
    currency: CurrencyCode
    provider: str
    provider_ref: str | None
    payment_ref: str | None
    created_at: UtcTime
    paid_at: UtcTime | None
    erased_at: UtcTime | None
    consents: list[ExportedConsent] = Field(description="The optional emails the buyer agreed to at checkout.")
    enrollment: ExportedEnrollment | None
    emails: list[ExportedEmail]
    refunds: list[ExportedRefund]
    log: list[ExportedLogEntry]
    provider_events: list[ExportedProviderEvent]


class ExportedAttendee(BaseModel):
    name: str
    email: str
    erased_at: UtcTime | None


class AttendeeExport(BaseModel):
    """Everything held about one attendee at one creator."""

    format: Literal[EXPORT_FORMAT]
    exported_at: UtcTime
    attendee: ExportedAttendee
    orders: list[ExportedOrder] = Field(description="Every order of the attendee (the same email) with this creator.")


class Erasure(BaseModel):
    order: Order
    erased_order_ids: list[int] = Field(
        description="The orders erased by this request: every order of the attendee with you; empty when they were "
        "erased before."
    )


class Error(BaseModel):
    error: str = Field(
        description=(
            "Stable machine code, e.g. `unauthorized`, `not_found`, `validation_error`, `method_not_allowed` (with an "
            "`Allow` header)."
        )
    )
    message: str = Field(description="For people; may be translated.")
    fields: dict[str, str] = Field(
        default_factory=dict, description="422 only: a message per invalid field of the request body."
    )


# Every answer's model (the OpenAPI document publishes them under these names, with the models they hold).
ANSWERS = (
    Session,
    SessionList,
    Order,
    OrderList,
    Refund,
    RefundMade,
    CheckoutStarted,
    DiscountCode,
    DiscountCodeList,
    AttendeeExport,
    Erasure,
    Error,
)

Answer = TypeVar("Answer", bound=BaseModel)


def _from_row(model: type[Answer], row: object, **computed: Any) -> Answer:
    """`model` with the row's attributes of the same names, and the `computed` ones."""
    values = {name: computed[name] if name in computed else getattr(row, name) for name in model.model_fields}
    return model.model_construct(**values)


def session_json(session: models.LiveSession) -> dict:
    return _session(session).model_dump(mode="json")


def _session(session: models.LiveSession) -> Session:
    public_url = settings().BASE_URL + url_for("storefront.session_page", session_id=session.id)
    return _from_row(Session, session, reminder_offsets_minutes=session.reminder_offsets, public_url=public_url)


def sessions_json(sessions: list[models.LiveSession]) -> dict:
    return SessionList.model_construct(sessions=[_session(session) for session in sessions]).model_dump(mode="json")


def _order(order: models.Order) -> Order:
    enrollment = order.enrollment
    return _from_row(Order, order, enrollment=_from_row(Enrollment, enrollment) if enrollment else None)


def order_json(order: models.Order) -> dict:
    return _order(order).model_dump(mode="json")


def orders_json(orders: list[models.Order]) -> dict:
    return OrderList.model_construct(orders=[_order(order) for order in orders]).model_dump(mode="json")


def refund_made_json(refund: models.Refund, order: models.Order) -> dict:
    made = RefundMade.model_construct(refund=_from_row(Refund, refund), order=_order(order))
    return made.model_dump(mode="json")


def discount_code_json(code: models.DiscountCode) -> dict:
    return _from_row(DiscountCode, code).model_dump(mode="json")


def discount_codes_json(codes: list[models.DiscountCode]) -> dict:
    listed = DiscountCodeList.model_construct(discount_codes=[_from_row(DiscountCode, code) for code in codes])
    return listed.model_dump(mode="json")


def erasure_json(order: models.Order, erased_order_ids: list[int]) -> dict:
    return Erasure.model_construct(order=_order(order), erased_order_ids=erased_order_ids).model_dump(mode="json")


def checkout_started_json(order: models.Order, checkout_url: str, access_token: str, ticket_url: str) -> dict:
    started = CheckoutStarted.model_construct(
        order_id=order.id,
        status=order.status,
        checkout_url=checkout_url,
        hold_expires_at=order.hold_expires_at,
        access_token=access_token,
        ticket_url=ticket_url,
    )
    return started.model_dump(mode="json")
