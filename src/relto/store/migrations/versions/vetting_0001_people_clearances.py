"""Vetting: people, clearances and the append-only clearance event log.

Revision ID: vetting_0001
Revises: 0001_base
"""

import sqlalchemy as sa
from alembic import op

revision = "vetting_0001"
down_revision = "0001_base"
branch_labels = ("vetting",)
depends_on = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "vetting_person",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("organisation", sa.String(200), nullable=False),
        sa.Column("home_nation", sa.String(3), nullable=False),
        sa.Column("nationalities", sa.String(200), nullable=False),
        sa.Column("roles", sa.String(200), nullable=False),
        sa.Column("projects", sa.Text(), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_vetting_person"),
    )
    op.create_table(
        "vetting_clearance",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("nation", sa.String(3), nullable=False),
        sa.Column("level", sa.String(40), nullable=False),
        sa.Column("classification", sa.String(80), nullable=False),
        sa.Column("caveats", sa.String(1200), nullable=False),
        sa.Column("sponsor", sa.String(200), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["vetting_person.id"],
            name="fk_vetting_clearance_person_id_vetting_person",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_vetting_clearance"),
    )
    op.create_index("ix_vetting_clearance_person_id", "vetting_clearance", ["person_id"])
    op.create_table(
        "vetting_clearance_event",
        sa.Column("clearance_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("at", _TZ, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("from_status", sa.String(20), nullable=True),
        sa.Column("to_status", sa.String(20), nullable=True),
        sa.Column("valid_until", _TZ, nullable=True),
        sa.Column("obligation", sa.String(40), nullable=True),
        sa.Column("occurred_on", sa.Date(), nullable=True),
        sa.Column("due_at", _TZ, nullable=True),
        sa.Column("incident", sa.String(20), nullable=True),
        sa.Column("ref", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["clearance_id"],
            ["vetting_clearance.id"],
            name="fk_vetting_clearance_event_clearance_id_vetting_clearance",
        ),
        sa.PrimaryKeyConstraint("clearance_id", "seq", name="pk_vetting_clearance_event"),
    )
    # History is never rewritten: refuse UPDATE and DELETE on the event log.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION vetting_event_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'vetting_clearance_event is append-only';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER vetting_event_no_change BEFORE UPDATE OR DELETE "
            "ON vetting_clearance_event FOR EACH ROW "
            "EXECUTE FUNCTION vetting_event_append_only()"
        )
    else:
        for what in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER vetting_event_no_{what.lower()} BEFORE {what} "
                "ON vetting_clearance_event BEGIN "
                "SELECT RAISE(ABORT, 'vetting_clearance_event is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER vetting_event_no_change ON vetting_clearance_event")
        op.execute("DROP FUNCTION vetting_event_append_only()")
    op.drop_table("vetting_clearance_event")
    op.drop_index("ix_vetting_clearance_person_id", "vetting_clearance")
    op.drop_table("vetting_clearance")
    op.drop_table("vetting_person")
