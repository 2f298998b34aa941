"""The export-control office: item classifications, parties, licences with their
consumption, excluded lists, rules, and the transfer records (issue 16); the
``export`` fact counter.

Revision ID: export_0001
Revises: 0001_base, facts_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "export_0001"
down_revision = "0001_base"
branch_labels = ("export",)
depends_on = "facts_0001"

_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "export_item",
        sa.Column("document_id", sa.String(64), nullable=False),
        sa.Column("nation", sa.String(3), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("classified_by", sa.String(200), nullable=False),
        sa.Column("classified_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("document_id", name="pk_export_item"),
    )
    op.create_table(
        "export_party",
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("nation", sa.String(3), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("updated_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_export_party"),
    )
    op.create_table(
        "export_licence",
        sa.Column("number", sa.String(200), nullable=False),
        sa.Column("regime", sa.String(20), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("value_consumed", sa.String(40), nullable=False),
        sa.Column("quantity_consumed", sa.BigInteger(), nullable=False),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("updated_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("number", name="pk_export_licence"),
    )
    op.create_table(
        "export_list",
        sa.Column("regime", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("loaded_by", sa.String(200), nullable=False),
        sa.Column("loaded_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("regime", "name", "version", name="pk_export_list"),
    )
    op.create_table(
        "export_rules",
        sa.Column("regime", sa.String(20), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("updated_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("regime", name="pk_export_rules"),
    )
    op.create_table(
        "export_transfer",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", _AT, nullable=False),
        sa.Column("document_id", sa.String(64), nullable=False),
        sa.Column("regime", sa.String(20), nullable=False),
        sa.Column("licence_number", sa.String(200), nullable=True),
        sa.Column("record", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_export_transfer"),
    )
    op.create_index("ix_export_transfer_at", "export_transfer", ["at"])
    counters = sa.table("fact_version", sa.column("name", sa.String), sa.column("value"))
    op.bulk_insert(counters, [{"name": "export", "value": 0}])


def downgrade() -> None:
    op.execute("DELETE FROM fact_version WHERE name = 'export'")
    op.drop_index("ix_export_transfer_at", table_name="export_transfer")
    for table in (
        "export_transfer",
        "export_rules",
        "export_list",
        "export_licence",
        "export_party",
        "export_item",
    ):
        op.drop_table(table)
