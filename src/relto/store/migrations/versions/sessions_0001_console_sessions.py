"""Console sessions the node can revoke: one row per signed-in browser.

Revision ID: sessions_0001
Revises: 0001_base
"""

import sqlalchemy as sa
from alembic import op

revision = "sessions_0001"
down_revision = "0001_base"
branch_labels = ("sessions",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_session",
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name="pk_console_session"),
    )
    op.create_index("ix_console_session_person_id", "console_session", ["person_id"])
    op.create_index("ix_console_session_expires_at", "console_session", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_console_session_expires_at", table_name="console_session")
    op.drop_index("ix_console_session_person_id", table_name="console_session")
    op.drop_table("console_session")
