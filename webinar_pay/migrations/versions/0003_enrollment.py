"""enrollment: Zoom/YouTube enrolment state, the real start and end of sessions

Revision ID: 0003_enrollment
Revises: 0002_outbox
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_enrollment"
down_revision = "0002_outbox"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("live_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("started_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("ended_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("alerted_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("attended", sa.Boolean(), nullable=True))
        batch_op.create_index(batch_op.f("ix_enrollments_registrant_id"), ["registrant_id"], unique=False)


def downgrade():
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrollments_registrant_id"))
        batch_op.drop_column("attended")
        batch_op.drop_column("alerted_at")
        batch_op.drop_column("claimed_at")
    with op.batch_alter_table("live_sessions", schema=None) as batch_op:
        batch_op.drop_column("ended_at")
        batch_op.drop_column("started_at")
