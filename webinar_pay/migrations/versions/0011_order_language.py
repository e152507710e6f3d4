"""languages: the buyer's language and time zone on each order, the creator's language on each account

Revision ID: 0011_order_language
Revises: 0010_outbox_rendered
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_order_language"
down_revision = "0010_outbox_rendered"
branch_labels = None
depends_on = None


def upgrade():
    # Orders and accounts from before languages were kept were all in English.
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locale", sa.String(length=5), server_default="en", nullable=False))
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))
    with op.batch_alter_table("creators", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locale", sa.String(length=5), server_default="en", nullable=False))


def downgrade():
    with op.batch_alter_table("creators", schema=None) as batch_op:
        batch_op.drop_column("locale")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("timezone")
        batch_op.drop_column("locale")
