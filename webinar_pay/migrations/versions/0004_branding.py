"""branding: the creator's reply-to address, brand colour and logo; a session's replay link

Revision ID: 0004_branding
Revises: 0003_enrollment
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_branding"
down_revision = "0003_enrollment"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("creators", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reply_to", sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column("brand_colour", sa.String(length=7), nullable=True))
        batch_op.add_column(sa.Column("logo_url", sa.String(length=500), nullable=True))
    with op.batch_alter_table("live_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replay_url", sa.String(length=500), nullable=True))


def downgrade():
    with op.batch_alter_table("live_sessions", schema=None) as batch_op:
        batch_op.drop_column("replay_url")
    with op.batch_alter_table("creators", schema=None) as batch_op:
        batch_op.drop_column("logo_url")
        batch_op.drop_column("brand_colour")
        batch_op.drop_column("reply_to")
