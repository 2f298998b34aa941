"""Transparency log's database: when each pinned partner was last heard from, and
whether it is silent (relto.federation.reachability).

Revision ID: audit_0004
Revises: audit_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "audit_0004"
down_revision = "audit_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_partner_contact",
        sa.Column("nation", sa.String(3), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_heard", sa.DateTime(timezone=True), nullable=True),
        sa.Column("how", sa.String(16), nullable=False),
        sa.Column("heard_cosigned", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heard_checkpoint", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heard_changes", sa.DateTime(timezone=True), nullable=True),
        sa.Column("misses", sa.Integer(), nullable=False),
        sa.Column("last_miss", sa.String(300), nullable=False),
        sa.Column("silent_since", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("nation", name="pk_audit_partner_contact"),
    )


def downgrade() -> None:
    op.drop_table("audit_partner_contact")
