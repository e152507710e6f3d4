"""outbox: a copy of each email as it was sent (recipient, reply-to, subject, text, HTML, invitation)

Revision ID: 0010_outbox_rendered
Revises: 0009_worker_heartbeat
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_outbox_rendered"
down_revision = "0009_worker_heartbeat"
branch_labels = None
depends_on = None


def upgrade():
    # Messages sent before this revision keep no copy (NULL): the app says so rather than render them anew.
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sent_to", sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column("sent_reply_to", sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column("sent_subject", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("sent_text", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("sent_html", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("sent_ics", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_column("sent_ics")
        batch_op.drop_column("sent_html")
        batch_op.drop_column("sent_text")
        batch_op.drop_column("sent_subject")
        batch_op.drop_column("sent_reply_to")
        batch_op.drop_column("sent_to")
