"""Key access service: the DPoP replay cache shared by every host of a node.

Revision ID: kas_0001
Revises: 0001_base
"""

import sqlalchemy as sa
from alembic import op

revision = "kas_0001"
down_revision = "0001_base"
branch_labels = ("kas",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kas_dpop_jti",
        sa.Column("k", sa.String(320), nullable=False),
        sa.Column("exp", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("k", name="pk_kas_dpop_jti"),
    )
    op.create_index("ix_kas_dpop_jti_exp", "kas_dpop_jti", ["exp"])


def downgrade() -> None:
    op.drop_index("ix_kas_dpop_jti_exp", table_name="kas_dpop_jti")
    op.drop_table("kas_dpop_jti")
