"""Worker heartbeats: one row per worker process, for `worker --check` and /readyz

Revision ID: 0009_worker_heartbeat
Revises: 0008_hold_limits
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_worker_heartbeat"
down_revision = "0008_hold_limits"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "worker_heartbeats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("last_beat_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("host", "pid", name="uq_worker_heartbeats_process"),
    )
    with op.batch_alter_table("worker_heartbeats", schema=None) as batch_op:
        batch_op.create_index("ix_worker_heartbeats_last_beat_at", ["last_beat_at"], unique=False)


def downgrade():
    with op.batch_alter_table("worker_heartbeats", schema=None) as batch_op:
        batch_op.drop_index("ix_worker_heartbeats_last_beat_at")
    op.drop_table("worker_heartbeats")
