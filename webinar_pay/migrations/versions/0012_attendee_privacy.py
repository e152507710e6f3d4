"""attendees' data: erased orders, deleted creators, consents given at checkout

Revision ID: 0012_attendee_privacy
Revises: 0011_order_language
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_attendee_privacy"
down_revision = "0011_order_language"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("erased_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("creators", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(), nullable=True))
    op.create_table(
        "order_consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("wording", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("given_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id", "purpose", name="uq_order_consents_purpose"),
    )
    with op.batch_alter_table("order_consents", schema=None) as batch_op:
        batch_op.create_index("ix_order_consents_order_id", ["order_id"], unique=False)


def downgrade():
    with op.batch_alter_table("order_consents", schema=None) as batch_op:
        batch_op.drop_index("ix_order_consents_order_id")
    op.drop_table("order_consents")
    with op.batch_alter_table("creators", schema=None) as batch_op:
        batch_op.drop_column("deleted_at")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("erased_at")
