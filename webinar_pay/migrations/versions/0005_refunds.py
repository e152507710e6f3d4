"""refunds: a session's self-cancellation policy (full refund until N hours before the start)

Revision ID: 0005_refunds
Revises: 0004_branding
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_refunds"
down_revision = "0004_branding"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("live_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cancellation_hours", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("live_sessions", schema=None) as batch_op:
        batch_op.drop_column("cancellation_hours")
