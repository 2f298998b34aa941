"""Partnerships, projects and admissions.

Revision ID: partnership_0001
Revises: 0001_base
"""

import sqlalchemy as sa
from alembic import op

revision = "partnership_0001"
down_revision = "0001_base"
branch_labels = ("partnership",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partnership",
        sa.Column("id", sa.String(63), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("members", sa.String(200), nullable=False),
        sa.Column("partners", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_partnership"),
    )
    op.create_table(
        "partnership_project",
        sa.Column("id", sa.String(63), nullable=False),
        sa.Column("partnership_id", sa.String(63), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["partnership_id"],
            ["partnership.id"],
            name="fk_partnership_project_partnership_id_partnership",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_partnership_project"),
    )
    op.create_index(
        "ix_partnership_project_partnership_id", "partnership_project", ["partnership_id"]
    )
    op.create_table(
        "partnership_admission",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(63), nullable=False),
        sa.Column("nation", sa.String(3), nullable=False),
        sa.Column("ceiling", sa.String(40), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("admitted_by", sa.String(200), nullable=False),
        sa.Column("ended_by", sa.String(200), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["partnership_project.id"],
            name="fk_partnership_admission_project_id_partnership_project",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_partnership_admission"),
    )
    op.create_index(
        "ix_partnership_admission_project_nation",
        "partnership_admission",
        ["project_id", "nation"],
    )


def downgrade() -> None:
    op.drop_index("ix_partnership_admission_project_nation", "partnership_admission")
    op.drop_table("partnership_admission")
    op.drop_index("ix_partnership_project_partnership_id", "partnership_project")
    op.drop_table("partnership_project")
    op.drop_table("partnership")
