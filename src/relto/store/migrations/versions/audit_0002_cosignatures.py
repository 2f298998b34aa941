"""Transparency log: partner witnesses' cosignatures of this node's checkpoints.

Revision ID: audit_0002
Revises: audit_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "audit_0002"
down_revision = "audit_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_cosignature",
        sa.Column("size", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("nation", sa.String(3), nullable=False),
        sa.Column("witness_key", sa.String(512), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("cosigned_at", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size", "nation", name="pk_audit_cosignature"),
    )
    op.create_index("ix_audit_cosignature_nation_size", "audit_cosignature", ["nation", "size"])


def downgrade() -> None:
    op.drop_index("ix_audit_cosignature_nation_size", table_name="audit_cosignature")
    op.drop_table("audit_cosignature")
