"""Security-of-information agreements a partnership recorded by its members' quorum
(partnership change ``agreement.record``); decisions recognise clearances through
them beside relto.vetting's sourced data.

Revision ID: partnership_0005
Revises: partnership_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "partnership_0005"
down_revision = "partnership_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partnership_agreement",
        sa.Column("partnership_id", sa.String(63), nullable=False),
        sa.Column("id", sa.String(63), nullable=False),
        sa.Column("parties", sa.String(7), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("in_force", sa.Date(), nullable=False),
        sa.Column("terminated", sa.Date(), nullable=True),
        sa.Column("scope", sa.String(20), nullable=False),
        sa.Column("sources", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(200), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("partnership_id", "id", name="pk_partnership_agreement"),
        sa.ForeignKeyConstraint(
            ["partnership_id"],
            ["partnership.id"],
            name="fk_partnership_agreement_partnership_id_partnership",
        ),
    )


def downgrade() -> None:
    op.drop_table("partnership_agreement")
