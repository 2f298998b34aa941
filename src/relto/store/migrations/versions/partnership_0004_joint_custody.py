"""Joint custody: the nations that hold a share of new objects' keys by default
(per project), and the nations that hold one for each protected document.

Both are comma-separated alpha-3 codes; empty (what existing rows get) means the
originator's key access service alone.

Revision ID: partnership_0004
Revises: partnership_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "partnership_0004"
down_revision = "partnership_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "partnership_project",
        sa.Column("joint_custody", sa.String(100), nullable=False, server_default=""),
    )
    op.add_column(
        "partnership_document",
        sa.Column("custody", sa.String(100), nullable=False, server_default=""),
    )


def downgrade() -> None:
    with op.batch_alter_table("partnership_document") as batch:
        batch.drop_column("custody")
    with op.batch_alter_table("partnership_project") as batch:
        batch.drop_column("joint_custody")
