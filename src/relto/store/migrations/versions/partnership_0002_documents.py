"""Protected documents of the partnership (label copies and container blob keys).

Revision ID: partnership_0002
Revises: partnership_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "partnership_0002"
down_revision = "partnership_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partnership_document",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("project_id", sa.String(63), nullable=False),
        sa.Column("originator", sa.String(3), nullable=False),
        sa.Column("banner", sa.String(500), nullable=False),
        sa.Column("label_xml", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("blob_key", sa.String(200), nullable=False),
        sa.Column("policy_uuid", sa.String(64), nullable=False),
        sa.Column("plaintext_size", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["partnership_project.id"],
            name="fk_partnership_document_project_id_partnership_project",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_partnership_document"),
    )
    op.create_index("ix_partnership_document_project_id", "partnership_document", ["project_id"])
    op.create_index("ix_partnership_document_policy_uuid", "partnership_document", ["policy_uuid"])


def downgrade() -> None:
    op.drop_index("ix_partnership_document_policy_uuid", "partnership_document")
    op.drop_index("ix_partnership_document_project_id", "partnership_document")
    op.drop_table("partnership_document")
