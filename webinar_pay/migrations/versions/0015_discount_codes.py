"""discount codes: the creators' codes, and on each order the code it used, the discount and whether it holds a use

Revision ID: 0015_discount_codes
Revises: 0014_storefront
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_discount_codes"
down_revision = "0014_storefront"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "discount_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("creator_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("percent_off", sa.Integer(), nullable=True),
        sa.Column("amount_off", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("uses >= 0 AND (max_uses IS NULL OR uses <= max_uses)", name="discount_uses_within_max"),
        sa.CheckConstraint("(percent_off IS NULL) <> (amount_off IS NULL)", name="discount_percent_or_amount"),
        sa.ForeignKeyConstraint(["creator_id"], ["creators.id"]),
        sa.ForeignKeyConstraint(["session_id"], ["live_sessions.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("discount_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_discount_codes_creator_id"), ["creator_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_discount_codes_session_id"), ["session_id"], unique=False)
        batch_op.create_index(
            "uq_discount_codes_creator_code",
            ["creator_id", "code"],
            unique=True,
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        )
    # Only columns are added to `orders`: SQLite then alters the table in place. Adding a foreign key the batch way
    # would copy the table and drop the old one, which the other tables' foreign keys to orders refuse.
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("ALTER TABLE orders ADD COLUMN discount_code_id INTEGER REFERENCES discount_codes (id)")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        if not sqlite:
            batch_op.add_column(sa.Column("discount_code_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("discount_code", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("discount_amount", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("holds_discount", sa.Boolean(), server_default="0", nullable=False))
        batch_op.create_index(batch_op.f("ix_orders_discount_code_id"), ["discount_code_id"], unique=False)
        if not sqlite:
            batch_op.create_foreign_key("fk_orders_discount_code_id", "discount_codes", ["discount_code_id"], ["id"])


def downgrade():
    with op.batch_alter_table("orders", schema=None) as batch_op:
        if op.get_bind().dialect.name != "sqlite":
            batch_op.drop_constraint("fk_orders_discount_code_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_orders_discount_code_id"))
        batch_op.drop_column("holds_discount")
        batch_op.drop_column("discount_amount")
        batch_op.drop_column("discount_code")
        batch_op.drop_column("discount_code_id")
    op.drop_table("discount_codes")
