"""Releasable To of each document, one row per nation (filtering in the database).

Existing documents get their rows from their banner (``REL TO`` nations and the
originator; ``NOFORN``: the originator alone).

Revision ID: partnership_0003
Revises: partnership_0002
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "partnership_0003"
down_revision = "partnership_0002"
branch_labels = None
depends_on = None

_REL_TO = re.compile(r"REL TO ([A-Z, ]+)")


def upgrade() -> None:
    table = op.create_table(
        "partnership_document_rel_to",
        sa.Column("document_id", sa.String(64), nullable=False),
        sa.Column("nation", sa.String(3), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["partnership_document.id"],
            name="fk_partnership_document_rel_to_document_id_partnership_document",
        ),
        sa.PrimaryKeyConstraint("document_id", "nation", name="pk_partnership_document_rel_to"),
    )
    op.create_index(
        "ix_partnership_document_rel_to_nation", "partnership_document_rel_to", ["nation"]
    )
    rows = op.get_bind().execute(sa.text("SELECT id, originator, banner FROM partnership_document"))
    inserts: list[dict[str, str]] = []
    for doc_id, originator, banner in rows:
        nations = {originator}
        found = _REL_TO.search(banner or "")
        if found:
            nations |= {n.strip() for n in found.group(1).split(",") if len(n.strip()) == 3}
        inserts.extend({"document_id": doc_id, "nation": n} for n in sorted(nations))
    if inserts:
        op.bulk_insert(table, inserts)


def downgrade() -> None:
    op.drop_index("ix_partnership_document_rel_to_nation", "partnership_document_rel_to")
    op.drop_table("partnership_document_rel_to")
