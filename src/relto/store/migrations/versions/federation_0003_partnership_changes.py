"""Federation: partnership changes with their approvals, and the applied chain.

Revision ID: federation_0003
Revises: federation_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "federation_0003"
down_revision = "federation_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federation_change",
        sa.Column("change_id", sa.String(64), nullable=False),
        sa.Column("partnership", sa.String(63), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("seen_at", sa.Float(), nullable=False),
        sa.Column("decided_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("change_id", name="pk_federation_change"),
    )
    op.create_table(
        "federation_change_place",
        sa.Column("partnership", sa.String(63), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("change_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("partnership", "seq", name="pk_federation_change_place"),
    )
    op.create_table(
        "federation_change_approval",
        sa.Column("change_id", sa.String(64), nullable=False),
        sa.Column("nation", sa.String(3), nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("change_id", "nation", name="pk_federation_change_approval"),
    )


def downgrade() -> None:
    op.drop_table("federation_change_approval")
    op.drop_table("federation_change_place")
    op.drop_table("federation_change")
