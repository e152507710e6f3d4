"""storefront: each creator's public page address (/c/<slug>) and short bio

Revision ID: 0014_storefront
Revises: 0013_accounts
"""

import re
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0014_storefront"
down_revision = "0013_accounts"
branch_labels = None
depends_on = None


def _slug(name: str, creator_id: int) -> str:
    """As services.creators.slug_for names new creators; an id suffix keeps the backfilled ones unique."""
    ascii_name = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:40].strip("-") or "creator"
    return f"{base}-{creator_id}"


def upgrade():
    with op.batch_alter_table("creators", schema=None) as batch_op:
        batch_op.add_column(sa.Column("slug", sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column("bio", sa.Text(), nullable=True))
    creators = sa.table("creators", sa.column("id", sa.Integer), sa.column("name", sa.String), sa.column("slug"))
    connection = op.get_bind()
    for creator_id, name in connection.execute(sa.select(creators.c.id, creators.c.name)).all():
        connection.execute(creators.update().where(creators.c.id == creator_id).values(slug=_slug(name, creator_id)))
    with op.batch_alter_table("creators", schema=None) as batch_op:
        batch_op.create_index("ix_creators_slug", ["slug"], unique=True)


def downgrade():
    with op.batch_alter_table("creators", schema=None) as batch_op:
        batch_op.drop_index("ix_creators_slug")
        batch_op.drop_column("bio")
        batch_op.drop_column("slug")
