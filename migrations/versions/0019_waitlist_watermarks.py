"""waitlist watermarks: the sweep skips entries whose capacity picture has not changed

`capacity_changes`: one row appended, by a trigger in the writing transaction itself, for every
write that may free capacity or loosen a rule of an organization (FREEING below). Inserts only, so
writers never queue on a shared row; the organization's signal is how many rows there have been.
`waitlist_sweeps`: per organization, the rows already counted and deleted (`folded`) and the
budgeted sweep's cursor. `waitlist_looks`: per entry, the signal of its last look that found
nothing, and when the clock alone may change that answer. New tables and triggers only.

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

INSTANT = models.base.UTCDateTime(timezone=True)

# Through a practitioner or a patient, for tables without organization_id ({row}: OLD or NEW).
_BY_PRACTITIONER = "(SELECT organization_id FROM practitioners WHERE id = {row}.practitioner_id)"
_BY_PATIENT = "(SELECT organization_id FROM patients WHERE id = {row}.patient_id)"
# (table, event, the organization, when). What only takes capacity (a booking, a hold, time off
# added) is left out; so is a hold's lapse, which no write marks: the sweep reads the clock for it
# (waitlist_looks.recheck_at), and the expiry sweep's later `outcome = 'expired'` adds nothing.
# The set-up (hours, rooms, practitioners, clinics, treatment types, clinic and treatment type
# policies) has its own signal, organizations.setup_version (migration 0011).
FREEING = [
    # An appointment's claims go on a cancel, a reschedule away or a device change. A hold's go
    # when it is booked (replaced by the appointment's: nothing freed) or released (holds, below).
    ("claims", "delete", "{row}.organization_id", "OLD.appointment_id IS NOT NULL"),
    (
        "claims",
        "update",
        "{row}.organization_id",
        "NEW.resource <> OLD.resource OR NEW.starts_at <> OLD.starts_at OR NEW.ends_at <> OLD.ends_at"
        " OR (NEW.expires_at IS NOT NULL AND (OLD.expires_at IS NULL OR NEW.expires_at < OLD.expires_at))",
    ),
    (
        "holds",
        "update",
        "{row}.organization_id",
        "(OLD.outcome IS NULL AND NEW.outcome = 'released') OR NEW.expires_at < OLD.expires_at",
    ),
    ("holds", "delete", "{row}.organization_id", None),
    # A status change (cancelled, no-show, a consultation completed: rule 1) or a move.
    (
        "appointments",
        "update",
        "{row}.organization_id",
        "NEW.status <> OLD.status OR NEW.starts_at <> OLD.starts_at OR NEW.ends_at <> OLD.ends_at"
        " OR NEW.practitioner_id <> OLD.practitioner_id OR NEW.room_id <> OLD.room_id",
    ),
    ("appointments", "delete", "{row}.organization_id", None),
    ("time_off", "update", "{row}.organization_id", None),
    ("time_off", "delete", "{row}.organization_id", None),
    ("external_busy", "update", _BY_PRACTITIONER, None),
    ("external_busy", "delete", _BY_PRACTITIONER, None),
    # The patient's side of the rules: consultations and past sessions, contraindications, courses.
    ("patients", "update", "{row}.organization_id", None),
    ("patient_contraindications", "update", _BY_PATIENT, None),
    ("patient_contraindications", "delete", _BY_PATIENT, None),
    ("courses", "insert", "{row}.organization_id", None),
    ("courses", "update", "{row}.organization_id", None),
    ("courses", "delete", "{row}.organization_id", None),
    ("past_sessions", "insert", "{row}.organization_id", None),
    ("past_sessions", "update", "{row}.organization_id", None),
    ("past_sessions", "delete", "{row}.organization_id", None),
]


def _name(table: str, event: str) -> str:
    return f"capacity_change_{table}_{event}"


def upgrade() -> None:
    op.create_table(
        "capacity_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capacity_changes")),
    )
    op.create_index(op.f("ix_capacity_changes_organization_id"), "capacity_changes", ["organization_id"])
    op.create_table(
        "waitlist_sweeps",
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("folded", sa.BigInteger(), nullable=False),
        sa.Column("cursor_joined_at", INSTANT, nullable=True),
        sa.Column("cursor_entry_id", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_waitlist_sweeps")),
    )
    op.create_table(
        "waitlist_looks",
        sa.Column("entry_id", sa.String(length=40), nullable=False),
        sa.Column("looked_under", sa.String(length=120), nullable=False),
        sa.Column("recheck_at", INSTANT, nullable=True),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["waitlist_entries.id"], name=op.f("fk_waitlist_looks_entry_id_waitlist_entries")
        ),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_waitlist_looks")),
    )
    postgresql = op.get_context().dialect.name == "postgresql"
    for table, event, org, when in FREEING:
        row = "OLD" if event in ("update", "delete") else "NEW"
        insert = f"INSERT INTO capacity_changes (organization_id) SELECT {org.format(row=row)}"
        name = _name(table, event)
        if postgresql:
            # <> is NULL when either side is: a change from or to NULL must still count.
            condition = when and when.replace(" <> ", " IS DISTINCT FROM ")
            op.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {insert}; RETURN NULL; END $$"
            )
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event.upper()} ON {table} FOR EACH ROW "
                + (f"WHEN ({condition}) " if condition else "")
                + f"EXECUTE FUNCTION {name}()"
            )
        else:
            condition = when and when.replace(" <> ", " IS NOT ")
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event.upper()} ON {table} FOR EACH ROW "
                + (f"WHEN {condition} " if condition else "")
                + f"BEGIN {insert}; END"
            )


def downgrade() -> None:
    postgresql = op.get_context().dialect.name == "postgresql"
    for table, event, _org, _when in FREEING:
        name = _name(table, event)
        op.execute(f"DROP TRIGGER {name}" + (f" ON {table}" if postgresql else ""))
        if postgresql:
            op.execute(f"DROP FUNCTION {name}()")
    op.drop_table("waitlist_looks")
    op.drop_table("waitlist_sweeps")
    op.drop_index(op.f("ix_capacity_changes_organization_id"), table_name="capacity_changes")
    op.drop_table("capacity_changes")
