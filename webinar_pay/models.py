"""Database models. State changes go through the services, never through these classes directly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy import text as sql
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db
from .limits import (
    MAX_DISCOUNT_CODE_LENGTH,
    MAX_EMAIL_LENGTH,
    MAX_ID,
    MAX_NAME_LENGTH,
    MAX_TITLE_LENGTH,
    MAX_TOKEN_NAME_LENGTH,
    MAX_URL_LENGTH,
)
from .locales import DEFAULT_LOCALE


def get_by_id(model, object_id: int | None):
    """`db.session.get` for ids that come from outside: an id no row can have is simply not found."""
    if object_id is None or not 0 < object_id <= MAX_ID:
        return None
    return db.session.get(model, object_id)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Stores naive UTC (SQLite has no time zones) and always hands back aware UTC datetimes."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=UTC)


def render_migration_item(type_: str, obj, autogen_context) -> str | bool:
    """Migrations spell UTCDateTime as a plain DateTime, so they never import the app's models."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


class Creator(UserMixin, db.Model):
    __tablename__ = "creators"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(MAX_EMAIL_LENGTH), unique=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default="creator")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # The language of the creator's own emails (and of their pages when no language was chosen): `locales`.
    locale: Mapped[str] = mapped_column(String(5), default=DEFAULT_LOCALE, server_default=DEFAULT_LOCALE)
    reply_to: Mapped[str | None] = mapped_column(String(MAX_EMAIL_LENGTH))  # where attendees' replies go; else `email`
    brand_colour: Mapped[str | None] = mapped_column(String(7))  # "#rrggbb", used in emails
    logo_url: Mapped[str | None] = mapped_column(String(MAX_URL_LENGTH))
    # The creator's own user on the app's Zoom account, verified with Zoom when linked: the meetings it hosts are
    # theirs to sell. One creator per Zoom user.
    zoom_user_id: Mapped[str | None] = mapped_column(String(64), index=True, unique=True)
    zoom_user_email: Mapped[str | None] = mapped_column(String(MAX_EMAIL_LENGTH))
    # The creator's public page, /c/<slug>: its address (lower-case letters, digits, hyphens) and a short bio.
    slug: Mapped[str | None] = mapped_column(String(60), unique=True, index=True)
    bio: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when the creator deleted their account: the row stays, anonymised, for the sessions' accounting.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the login email was confirmed by a link sent to it; None until then (paid sessions wait for it).
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # An address the creator asked to move to, kept here until its link is followed.
    pending_email: Mapped[str | None] = mapped_column(String(MAX_EMAIL_LENGTH))
    # Part of every login cookie (`get_id`): raising it ends every session issued before.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # TOTP: the secret encrypted under a key derived from SECRET_KEY (`services.totp`); set but not enabled while
    # the creator enrols; the last time step accepted, so that a code is never accepted twice.
    totp_secret: Mapped[str | None] = mapped_column(String(255))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_last_step: Mapped[int | None] = mapped_column(Integer)

    sessions: Mapped[list[LiveSession]] = relationship(back_populates="creator")

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def has_two_factor(self) -> bool:
        return self.totp_enabled_at is not None


class RecoveryCode(db.Model):
    """A single-use code that stands in for a TOTP code; only its hash is kept."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    creator_id: Mapped[int] = mapped_column(ForeignKey("creators.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoginRecord(db.Model):
    """A successful log-in, shown to the creator on the account page (the newest few are kept)."""

    __tablename__ = "login_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    creator_id: Mapped[int] = mapped_column(ForeignKey("creators.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    address: Mapped[str | None] = mapped_column(String(64))
    browser: Mapped[str | None] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(20))  # "password", "totp", "recovery_code"


class ZoomMeeting(db.Model):
    """Which creator a Zoom meeting or webinar ID belongs to (Zoom numbers both from one space).

    Every creator shares the app's Zoom account, so an ID alone proves nothing: a row is written when the app
    schedules a meeting for a creator, or when a creator first uses a meeting their linked Zoom user hosts. The
    primary key makes the first owner the only one, also when two creators publish the same ID at once.
    """

    __tablename__ = "zoom_meetings"

    meeting_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    creator_id: Mapped[int] = mapped_column(ForeignKey("creators.id"), index=True)
    origin: Mapped[str] = mapped_column(String(20))  # "scheduled" by the app, "host" (linked Zoom user), "migrated"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(db.Model):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    creator_id: Mapped[int] = mapped_column(ForeignKey("creators.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(MAX_TOKEN_NAME_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    creator: Mapped[Creator] = relationship()


class SessionStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    ENDED = "ended"
    CANCELLED = "cancelled"


class Platform(StrEnum):
    ZOOM = "zoom"
    YOUTUBE = "youtube"
    LINK = "link"


# The only legal moves (`services.state.transition` applies them). Nothing ends a session automatically yet.
SESSION_TRANSITIONS: dict[SessionStatus, set[SessionStatus]] = {
    SessionStatus.DRAFT: {SessionStatus.PUBLISHED, SessionStatus.CANCELLED},
    SessionStatus.PUBLISHED: {SessionStatus.CANCELLED, SessionStatus.ENDED},
    SessionStatus.ENDED: set(),
    SessionStatus.CANCELLED: set(),
}


class LiveSession(db.Model):
    __tablename__ = "live_sessions"
    __table_args__ = (
        CheckConstraint("seats_taken >= 0 AND seats_taken <= capacity", name="seats_within_capacity"),
        CheckConstraint("price >= 0", name="price_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    creator_id: Mapped[int] = mapped_column(ForeignKey("creators.id"), index=True)
    title: Mapped[str] = mapped_column(String(MAX_TITLE_LENGTH))
    description: Mapped[str] = mapped_column(Text, default="")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    timezone: Mapped[str] = mapped_column(String(64))
    duration_minutes: Mapped[int] = mapped_column(Integer)
    price: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    capacity: Mapped[int] = mapped_column(Integer)
    seats_taken: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default=SessionStatus.DRAFT)
    platform: Mapped[str] = mapped_column(String(10))
    zoom_meeting_id: Mapped[str | None] = mapped_column(String(32))
    zoom_kind: Mapped[str | None] = mapped_column(String(10))
    # The occurrence of a (recurring) Zoom meeting this session is, once an event told us: Zoom's per-occurrence uuid.
    zoom_occurrence_uuid: Mapped[str | None] = mapped_column(String(128))
    youtube_url: Mapped[str | None] = mapped_column(String(MAX_URL_LENGTH))
    join_link: Mapped[str | None] = mapped_column(String(MAX_URL_LENGTH))
    replay_url: Mapped[str | None] = mapped_column(String(MAX_URL_LENGTH))  # shared in the thank-you email once set
    reminder_offsets: Mapped[list[int]] = mapped_column(JSON, default=lambda: [1440, 60])
    # Attendees may cancel for a full refund until this many hours before the start; None: no self-cancellation.
    cancellation_hours: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The real start and end, as Zoom reports them (webhooks); the thank-you email keys off ended_at.
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    creator: Mapped[Creator] = relationship(back_populates="sessions")
    orders: Mapped[list[Order]] = relationship(back_populates="session", order_by="Order.id")

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.duration_minutes)

    @property
    def seats_left(self) -> int:
        return max(self.capacity - self.seats_taken, 0)

    @property
    def is_free(self) -> bool:
        return self.price == 0

    def has_started(self, now: datetime | None = None) -> bool:
        return (now or utcnow()) >= self.starts_at

    @property
    def is_on_sale(self) -> bool:
        return self.status == SessionStatus.PUBLISHED and not self.has_started()


class OrderStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    REFUNDED = "refunded"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    FAILED = "failed"
    DISPUTED = "disputed"


# The only legal moves. A payment may still arrive for an expired, cancelled or failed order
# (the provider's page outlived our hold): it is then paid if a seat is free, else refunded.
ORDER_TRANSITIONS: dict[OrderStatus, set[OrderStatus]] = {
    OrderStatus.PENDING: {OrderStatus.PAID, OrderStatus.EXPIRED, OrderStatus.CANCELLED, OrderStatus.FAILED},
    OrderStatus.EXPIRED: {OrderStatus.PAID, OrderStatus.REFUNDED},
    OrderStatus.CANCELLED: {OrderStatus.PAID, OrderStatus.REFUNDED},
    OrderStatus.FAILED: {OrderStatus.PAID, OrderStatus.REFUNDED},
    OrderStatus.PAID: {OrderStatus.REFUNDED, OrderStatus.DISPUTED},
    OrderStatus.DISPUTED: {OrderStatus.PAID, OrderStatus.REFUNDED},
    OrderStatus.REFUNDED: set(),
}


class Order(db.Model):
    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("provider", "provider_ref", name="uq_orders_provider_ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("live_sessions.id"), index=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH))
    email: Mapped[str] = mapped_column(String(MAX_EMAIL_LENGTH), index=True)
    amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    provider: Mapped[str] = mapped_column(String(20))
    provider_ref: Mapped[str | None] = mapped_column(String(255))
    payment_ref: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), default=OrderStatus.PENDING, index=True)
    holds_seat: Mapped[bool] = mapped_column(Boolean, default=True)
    hold_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    token_nonce: Mapped[str] = mapped_column(String(32))
    # A keyed hash of the buyer's network address while the order holds an unpaid seat (the hold limits); never the
    # address itself, and cleared once the order leaves `pending`.
    client_hash: Mapped[str | None] = mapped_column(String(32))
    # The discount code the buyer entered (as it was, kept when the code is deleted) and what it took off the price:
    # `amount` is what the buyer pays. `holds_discount`: the order occupies one of the code's uses (given back, like
    # the seat, when an unpaid order ends).
    discount_code_id: Mapped[int | None] = mapped_column(ForeignKey("discount_codes.id"), index=True)
    discount_code: Mapped[str | None] = mapped_column(String(MAX_DISCOUNT_CODE_LENGTH))
    discount_amount: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    holds_discount: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # The buyer's language, the page's at checkout: every email, the ticket page and the receipt follow it.
    locale: Mapped[str] = mapped_column(String(5), default=DEFAULT_LOCALE, server_default=DEFAULT_LOCALE)
    # The buyer's own time zone as their browser gave it at checkout (None: unknown), shown next to the session's.
    timezone: Mapped[str | None] = mapped_column(String(64))
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the attendee's personal data was erased (on request, by retention, with the creator's account): the
    # name and email are placeholders from then on; amounts, dates, statuses and provider references stay.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    session: Mapped[LiveSession] = relationship(back_populates="orders")
    log: Mapped[list[OrderLog]] = relationship(order_by="OrderLog.id")
    refunds: Mapped[list[Refund]] = relationship(order_by="Refund.id")
    enrollment: Mapped[Enrollment | None] = relationship(back_populates="order")
    consents: Mapped[list[OrderConsent]] = relationship(order_by="OrderConsent.id")


class OrderConsent(db.Model):
    """An optional use of the buyer's email that they agreed to at checkout (a box they ticked): the purpose, the
    words they were shown, when, and from which page. No row: not agreed."""

    __tablename__ = "order_consents"
    __table_args__ = (UniqueConstraint("order_id", "purpose", name="uq_order_consents_purpose"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(40))
    wording: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(200))
    given_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DiscountCode(db.Model):
    """A creator's code: a percentage or an amount off, for one session or all of theirs, within optional dates and a
    number of uses. `uses` counts the orders holding one (`Order.holds_discount`), changed only by conditional
    UPDATEs, as seats are; a deleted code (`deleted_at`) takes no new use and frees its text for a new code."""

    __tablename__ = "discount_codes"
    __table_args__ = (
        CheckConstraint("uses >= 0 AND (max_uses IS NULL OR uses <= max_uses)", name="discount_uses_within_max"),
        CheckConstraint("(percent_off IS NULL) <> (amount_off IS NULL)", name="discount_percent_or_amount"),
        Index(
            "uq_discount_codes_creator_code",
            "creator_id",
            "code",
            unique=True,
            sqlite_where=sql("deleted_at IS NULL"),
            postgresql_where=sql("deleted_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    creator_id: Mapped[int] = mapped_column(ForeignKey("creators.id"), index=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("live_sessions.id"), index=True)  # None: all sessions
    code: Mapped[str] = mapped_column(String(MAX_DISCOUNT_CODE_LENGTH))  # upper case: codes are compared so
    percent_off: Mapped[int | None] = mapped_column(Integer)
    amount_off: Mapped[int | None] = mapped_column(Integer)
    currency: Mapped[str | None] = mapped_column(String(3))  # the currency of `amount_off`
    max_uses: Mapped[int | None] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    session: Mapped[LiveSession | None] = relationship()


class OrderLog(db.Model):
    """Audit trail: every state change of an order, who or what made it, and from which event."""

    __tablename__ = "order_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(120))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"  # never sent (again): what it was for had been refunded otherwise; `last_error` says so


# The only legal moves. A failed refund is sent again (pending) or made unnecessary by others (cancelled). Once a
# refund went to its provider, the provider's word on it wins over ours, whatever we recorded meanwhile: it may
# report it through after all, or failed after all (Stripe: a card closed since), in any order.
REFUND_TRANSITIONS: dict[RefundStatus, set[RefundStatus]] = {
    RefundStatus.PENDING: {RefundStatus.SUCCEEDED, RefundStatus.FAILED, RefundStatus.CANCELLED},
    RefundStatus.FAILED: {RefundStatus.PENDING, RefundStatus.CANCELLED, RefundStatus.SUCCEEDED},
    RefundStatus.SUCCEEDED: {RefundStatus.FAILED},
    RefundStatus.CANCELLED: {RefundStatus.SUCCEEDED, RefundStatus.FAILED},
}


class Refund(db.Model):
    __tablename__ = "refunds"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    provider: Mapped[str] = mapped_column(String(20))
    provider_refund_id: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20), default=RefundStatus.PENDING, index=True)
    reason: Mapped[str] = mapped_column(String(120))
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class EnrollmentStatus(StrEnum):
    PENDING = "pending"
    ENROLLED = "enrolled"
    FAILED = "failed"
    CANCELLED = "cancelled"


# The only legal moves (`services.state.transition` applies them). A failed enrolment goes back to pending when
# the creator (or a fixed configuration) retries it.
ENROLLMENT_TRANSITIONS: dict[EnrollmentStatus, set[EnrollmentStatus]] = {
    EnrollmentStatus.PENDING: {EnrollmentStatus.ENROLLED, EnrollmentStatus.FAILED, EnrollmentStatus.CANCELLED},
    EnrollmentStatus.FAILED: {EnrollmentStatus.PENDING, EnrollmentStatus.CANCELLED},
    EnrollmentStatus.ENROLLED: {EnrollmentStatus.CANCELLED},
    EnrollmentStatus.CANCELLED: set(),
}


class Enrollment(db.Model):
    __tablename__ = "enrollments"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    status: Mapped[str] = mapped_column(String(20), default=EnrollmentStatus.PENDING, index=True)
    join_url: Mapped[str | None] = mapped_column(String(1000))
    registrant_id: Mapped[str | None] = mapped_column(String(255), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attended: Mapped[bool | None] = mapped_column(Boolean)  # None: unknown (no attendance report)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    order: Mapped[Order] = relationship(back_populates="enrollment")


class ProviderEvent(db.Model):
    """Every webhook event received. The unique (provider, event_id) makes handling idempotent."""

    __tablename__ = "provider_events"
    __table_args__ = (UniqueConstraint("provider", "event_id", name="uq_provider_events_event"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(100))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    payload: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(255), default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookInbox(db.Model):
    """A verified webhook not yet applied: the queue between the webhook answer and the worker.

    Deleted once applied; `ProviderEvent` keeps the lasting record. `next_attempt_at` is also the claim: a
    worker applying the row has pushed it a lease ahead.
    """

    __tablename__ = "webhook_inbox"
    __table_args__ = (UniqueConstraint("provider", "event_id", name="uq_webhook_inbox_event"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


# Sent and failed messages may be armed again (a resend, a second update after another move).
OUTBOX_TRANSITIONS: dict[OutboxStatus, set[OutboxStatus]] = {
    OutboxStatus.PENDING: {OutboxStatus.SENDING, OutboxStatus.CANCELLED},
    OutboxStatus.SENDING: {OutboxStatus.SENT, OutboxStatus.FAILED, OutboxStatus.PENDING, OutboxStatus.CANCELLED},
    OutboxStatus.SENT: {OutboxStatus.PENDING},
    OutboxStatus.FAILED: {OutboxStatus.PENDING, OutboxStatus.CANCELLED},
    OutboxStatus.CANCELLED: {OutboxStatus.PENDING},
}


class OutboxMessage(db.Model):
    """Every email the app will send. Services plan, move or cancel rows; only the dispatcher sends."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        UniqueConstraint("order_id", "kind", name="uq_outbox_messages_order_kind"),
        Index("ix_outbox_messages_status_due_at", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # An attendee's message has its order; an account message (a reset or confirmation link) its creator and the
    # address it goes to instead.
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    creator_id: Mapped[int | None] = mapped_column(ForeignKey("creators.id"), index=True)
    to_address: Mapped[str | None] = mapped_column(String(MAX_EMAIL_LENGTH))
    kind: Mapped[str] = mapped_column(String(40))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    ics_sequence: Mapped[int] = mapped_column(Integer, default=0)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The email as it went out the last time it was sent, kept for the dev mailbox and the delivery log; None for
    # messages sent before copies were kept. The bodies are read only when shown.
    sent_to: Mapped[str | None] = mapped_column(String(254))
    sent_reply_to: Mapped[str | None] = mapped_column(String(254))
    sent_subject: Mapped[str | None] = mapped_column(Text)
    sent_text: Mapped[str | None] = mapped_column(Text, deferred=True, deferred_group="sent_copy")
    sent_html: Mapped[str | None] = mapped_column(Text, deferred=True, deferred_group="sent_copy")
    sent_ics: Mapped[str | None] = mapped_column(Text, deferred=True, deferred_group="sent_copy")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    order: Mapped[Order | None] = relationship()
    creator: Mapped[Creator | None] = relationship()


class WorkerHeartbeat(db.Model):
    """One row per `flask worker` process, beaten on every tick and webhook poll: how `worker --check` and
    `/readyz` know that payments are being applied. Rows of processes gone for long are deleted by the others."""

    __tablename__ = "worker_heartbeats"
    __table_args__ = (UniqueConstraint("host", "pid", name="uq_worker_heartbeats_process"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_beat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
