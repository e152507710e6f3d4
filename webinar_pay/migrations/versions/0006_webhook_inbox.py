"""Webhook inbox: verified webhooks waiting for the worker

Revision ID: 0006_webhook_inbox
Revises: 0005_refunds
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_webhook_inbox"
down_revision = "0005_refunds"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "webhook_inbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider", "event_id", name="uq_webhook_inbox_event"),
    )
    with op.batch_alter_table("webhook_inbox", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_inbox_next_attempt_at", ["next_attempt_at"], unique=False)


def downgrade():
    with op.batch_alter_table("webhook_inbox", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_inbox_next_attempt_at")
    op.drop_table("webhook_inbox")
