"""Change counters of decision facts (partnership, vetting, documents), seeded at 0.

Revision ID: facts_0001
Revises: 0001_base
"""

import sqlalchemy as sa
from alembic import op

revision = "facts_0001"
down_revision = "0001_base"
branch_labels = ("facts",)
depends_on = None

_KINDS = ("partnership", "vetting", "documents")


def upgrade() -> None:
    table = op.create_table(
        "fact_version",
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_fact_version"),
    )
    # Existing databases get their counters here: a process that cached facts
    # before this migration never saw a counter, so any starting value is safe.
    op.bulk_insert(table, [{"name": k, "value": 0} for k in _KINDS])


def downgrade() -> None:
    op.drop_table("fact_version")
