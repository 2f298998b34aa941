"""Federation: each person of this node's nation gets a stable index in its Token
Status List.

Revision ID: federation_0002
Revises: federation_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "federation_0002"
down_revision = "federation_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federation_status_index",
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("list_id", sa.String(16), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("assigned_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("person_id", name="pk_federation_status_index"),
        sa.UniqueConstraint("list_id", "idx", name="uq_federation_status_index_list_id"),
    )


def downgrade() -> None:
    op.drop_table("federation_status_index")
