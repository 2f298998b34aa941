"""Federation: the partner nodes this node trusts, one pinned descriptor per nation.

Revision ID: federation_0001
Revises: 0001_base
"""

import sqlalchemy as sa
from alembic import op

revision = "federation_0001"
down_revision = "0001_base"
branch_labels = ("federation",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federation_pinned_node",
        sa.Column("nation", sa.String(3), nullable=False),
        sa.Column("fingerprint", sa.String(80), nullable=False),
        sa.Column("descriptor", sa.Text(), nullable=False),
        sa.Column("issued_at", sa.Float(), nullable=False),
        sa.Column("not_after", sa.Float(), nullable=False),
        sa.Column("pinned_at", sa.Float(), nullable=False),
        sa.Column("pinned_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("nation", name="pk_federation_pinned_node"),
    )


def downgrade() -> None:
    op.drop_table("federation_pinned_node")
