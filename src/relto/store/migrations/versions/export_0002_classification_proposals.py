"""Classifications proposed at upload: the uploader's proposal for an object of an
export-relevant project, kept for an export-control officer to confirm; the
object is withheld meanwhile (issue 16).

Revision ID: export_0002
Revises: export_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "export_0002"
down_revision = "export_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "export_proposal",
        sa.Column("document_id", sa.String(64), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("item_version", sa.Integer(), nullable=False),
        sa.Column("proposed_by", sa.String(200), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("document_id", name="pk_export_proposal"),
    )


def downgrade() -> None:
    op.drop_table("export_proposal")
