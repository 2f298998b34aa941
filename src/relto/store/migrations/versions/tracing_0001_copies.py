"""Leak tracing (issue 17): each object's tracing secret, sealed for a KAS key; each
recipient's index in the object's code; the ledger of released copies, each with
the index of its ``trace.copy`` log entry.

Revision ID: tracing_0001
Revises: 0001_base
"""

import sqlalchemy as sa
from alembic import op

revision = "tracing_0001"
down_revision = "0001_base"
branch_labels = ("tracing",)
depends_on = None

_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tracing_secret",
        sa.Column("document_id", sa.String(64), nullable=False),
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("ephemeral", sa.String(400), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("document_id", name="pk_tracing_secret"),
    )
    op.create_table(
        "tracing_recipient",
        sa.Column("document_id", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(200), nullable=False),
        sa.Column("nation", sa.String(3), nullable=False),
        sa.Column("recipient_index", sa.Integer(), nullable=False),
        sa.Column("assigned_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("document_id", "person_id", name="pk_tracing_recipient"),
        sa.UniqueConstraint("document_id", "recipient_index", name="uq_tracing_recipient_index"),
    )
    op.create_table(
        "tracing_copy",
        sa.Column("document_id", sa.String(64), nullable=False),
        sa.Column("copy_number", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(200), nullable=False),
        sa.Column("nation", sa.String(3), nullable=False),
        sa.Column("recipient_index", sa.Integer(), nullable=False),
        sa.Column("media_type", sa.String(200), nullable=False),
        sa.Column("commitment", sa.String(64), nullable=False),
        sa.Column("at", _AT, nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("document_id", "copy_number", name="pk_tracing_copy"),
    )
    op.create_index("ix_tracing_copy_at", "tracing_copy", ["at"])


def downgrade() -> None:
    op.drop_index("ix_tracing_copy_at", table_name="tracing_copy")
    op.drop_table("tracing_copy")
    op.drop_table("tracing_recipient")
    op.drop_table("tracing_secret")
