"""hold limits: a keyed hash of the buyer's address on pending orders; YouTube join links get the join token

Revision ID: 0008_hold_limits
Revises: 0007_zoom_ownership
"""

import base64
import hashlib
import hmac

import sqlalchemy as sa
from alembic import context, op

revision = "0008_hold_limits"
down_revision = "0007_zoom_ownership"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("client_hash", sa.String(length=32), nullable=True))
    _youtube_join_links(old="ticket", new="join")


def downgrade():
    _youtube_join_links(old="join", new="ticket")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("client_hash")


def _youtube_join_links(old: str, new: str) -> None:
    """A YouTube enrolment stores the attendee's `/j/<token>` link, built until now with the ticket token, which
    no longer opens `/j/`: rewrite the stored links with the join token (HMAC-SHA256 of "join:<id>:<nonce>" under
    SECRET_KEY, as the app derives it at this revision). Only links that carry the expected old token change."""
    if context.is_offline_mode():
        return  # the key is not known to an SQL script; the app would then show the stored links as they are
    from flask import current_app

    key = current_app.config["SECRET_KEY"].encode()

    def token(purpose: str, order_id: int, nonce: str) -> str:
        digest = hmac.new(key, f"{purpose}:{order_id}:{nonce}".encode(), hashlib.sha256).digest()
        return f"{order_id}.{base64.urlsafe_b64encode(digest).decode()[:32]}"

    connection = op.get_bind()
    rows = connection.execute(
        sa.text(
            "SELECT enrollments.id, enrollments.join_url, orders.id, orders.token_nonce FROM enrollments "
            "JOIN orders ON orders.id = enrollments.order_id "
            "JOIN live_sessions ON live_sessions.id = orders.session_id "
            "WHERE live_sessions.platform = 'youtube' AND enrollments.join_url IS NOT NULL"
        )
    ).all()
    for enrollment_id, join_url, order_id, nonce in rows:
        prefix, separator, stored = join_url.rpartition("/j/")
        if separator and stored == token(old, order_id, nonce):
            connection.execute(
                sa.text("UPDATE enrollments SET join_url = :url WHERE id = :id"),
                {"url": f"{prefix}/j/{token(new, order_id, nonce)}", "id": enrollment_id},
            )
