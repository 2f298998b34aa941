"""Export-relevant projects: the console asks the uploader of a new object of such
a project for its export classification, and the object is withheld until an
export-control officer classifies it (issue 16). Existing projects are not.

Revision ID: partnership_0006
Revises: partnership_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "partnership_0006"
down_revision = "partnership_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "partnership_project",
        sa.Column("export_relevant", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("partnership_project") as batch:
        batch.drop_column("export_relevant")
