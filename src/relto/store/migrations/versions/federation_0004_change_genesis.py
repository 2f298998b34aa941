"""Federation: the members a partnership's change chain starts from (its genesis),
kept once so that a membership change applied later does not rewrite where the
chain began.

Revision ID: federation_0004
Revises: federation_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "federation_0004"
down_revision = "federation_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federation_change_genesis",
        sa.Column("partnership", sa.String(63), nullable=False),
        sa.Column("founders", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("partnership", name="pk_federation_change_genesis"),
    )


def downgrade() -> None:
    op.drop_table("federation_change_genesis")
