"""Transparency log: forks and rollbacks seen by witnessing, either way.

Revision ID: audit_0003
Revises: audit_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "audit_0003"
down_revision = "audit_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_witness_alarm",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("nation", sa.String(3), nullable=False),
        sa.Column("origin", sa.String(256), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("witnessed_size", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_witness_alarm"),
        sa.UniqueConstraint("kind", "nation", "size", "root", name="uq_audit_witness_alarm_kind"),
    )


def downgrade() -> None:
    op.drop_table("audit_witness_alarm")
