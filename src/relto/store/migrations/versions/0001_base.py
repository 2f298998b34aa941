"""Base schema: node metadata.

Each capability's migrations form their own branch rooted here
(``down_revision = "0001_base"``, ``branch_labels = ("<capability>",)``);
relto upgrades to all heads.

Revision ID: 0001_base
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_base"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "node_meta",
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_node_meta"),
    )


def downgrade() -> None:
    op.drop_table("node_meta")
