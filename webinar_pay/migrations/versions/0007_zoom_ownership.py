"""Zoom ownership: the creator's linked Zoom user, who owns which meeting ID, a session's occurrence uuid

Revision ID: 0007_zoom_ownership
Revises: 0006_webhook_inbox

Meeting IDs already in use are given to the creator of the first session that was published with them (drafts
were never checked, so they claim nothing).
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0007_zoom_ownership"
down_revision = "0006_webhook_inbox"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("creators", schema=None) as batch_op:
        batch_op.add_column(sa.Column("zoom_user_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("zoom_user_email", sa.String(length=254), nullable=True))
        batch_op.create_index("ix_creators_zoom_user_id", ["zoom_user_id"], unique=True)
    with op.batch_alter_table("live_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("zoom_occurrence_uuid", sa.String(length=128), nullable=True))
    op.create_table(
        "zoom_meetings",
        sa.Column("meeting_id", sa.String(length=32), nullable=False),
        sa.Column("creator_id", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["creator_id"], ["creators.id"]),
        sa.PrimaryKeyConstraint("meeting_id"),
    )
    with op.batch_alter_table("zoom_meetings", schema=None) as batch_op:
        batch_op.create_index("ix_zoom_meetings_creator_id", ["creator_id"], unique=False)
    op.execute(
        sa.text(
            "INSERT INTO zoom_meetings (meeting_id, creator_id, origin, created_at) "
            "SELECT s.zoom_meeting_id, s.creator_id, 'migrated', :now FROM live_sessions s "
            "WHERE s.id IN (SELECT MIN(f.id) FROM live_sessions f WHERE f.platform = 'zoom' "
            "AND f.zoom_meeting_id IS NOT NULL AND f.status <> 'draft' GROUP BY f.zoom_meeting_id)"
        ).bindparams(now=datetime.now(UTC).replace(tzinfo=None))
    )


def downgrade():
    with op.batch_alter_table("zoom_meetings", schema=None) as batch_op:
        batch_op.drop_index("ix_zoom_meetings_creator_id")
    op.drop_table("zoom_meetings")
    with op.batch_alter_table("live_sessions", schema=None) as batch_op:
        batch_op.drop_column("zoom_occurrence_uuid")
    with op.batch_alter_table("creators", schema=None) as batch_op:
        batch_op.drop_index("ix_creators_zoom_user_id")
        batch_op.drop_column("zoom_user_email")
        batch_op.drop_column("zoom_user_id")
