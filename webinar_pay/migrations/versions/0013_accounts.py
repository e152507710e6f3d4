"""accounts: email confirmation, session versions, TOTP and recovery codes, log-in records, named API tokens,
account emails in the outbox

Revision ID: 0013_accounts
Revises: 0012_attendee_privacy
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_accounts"
down_revision = "0012_attendee_privacy"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("creators", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_verified_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("pending_email", sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column("session_version", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("totp_secret", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("totp_enabled_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("totp_last_step", sa.Integer(), nullable=True))
    # Accounts made before addresses were confirmed keep selling: they count as confirmed since they were made.
    op.execute("UPDATE creators SET email_verified_at = created_at")

    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=80), nullable=True))

    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.alter_column("order_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("creator_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("to_address", sa.String(length=254), nullable=True))
        batch_op.create_foreign_key("fk_outbox_messages_creator_id", "creators", ["creator_id"], ["id"])
        batch_op.create_index("ix_outbox_messages_creator_id", ["creator_id"], unique=False)

    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("creator_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["creator_id"], ["creators.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_recovery_codes_creator_id", "recovery_codes", ["creator_id"], unique=False)
    op.create_table(
        "login_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("creator_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("browser", sa.String(length=200), nullable=True),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(["creator_id"], ["creators.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_login_records_creator_id", "login_records", ["creator_id"], unique=False)


def downgrade():
    op.drop_index("ix_login_records_creator_id", table_name="login_records")
    op.drop_table("login_records")
    op.drop_index("ix_recovery_codes_creator_id", table_name="recovery_codes")
    op.drop_table("recovery_codes")
    op.execute("DELETE FROM outbox_messages WHERE order_id IS NULL")
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_messages_creator_id")
        batch_op.drop_constraint("fk_outbox_messages_creator_id", type_="foreignkey")
        batch_op.drop_column("to_address")
        batch_op.drop_column("creator_id")
        batch_op.alter_column("order_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("name")
    with op.batch_alter_table("creators", schema=None) as batch_op:
        batch_op.drop_column("totp_last_step")
        batch_op.drop_column("totp_enabled_at")
        batch_op.drop_column("totp_secret")
        batch_op.drop_column("session_version")
        batch_op.drop_column("pending_email")
        batch_op.drop_column("email_verified_at")
