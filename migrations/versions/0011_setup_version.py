"""setup_version: a token per organization that changes with every change to what availability caches

organizations.setup_version is set to a new value by triggers on every table an availability search's
set-up reads (clinics, rooms, practitioners, treatment types, who works where and does what, weekly
hours, opening hours, closures), on insert, update and delete, in the writing transaction itself. A
worker's cache of that set-up (booking/services/availability_cache.py) is current exactly while the
token it was read under is the organization's token, which the search reads in the same statement as
the window's claims. The token is never reused, not even after a rollback: a sequence on PostgreSQL
(nextval is not transactional), a random 63-bit value on SQLite.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# table -> SQL giving the organization id of a row (NEW./OLD. stands for the row)
WATCHED = {
    "clinics": "{row}.organization_id",
    "rooms": "{row}.organization_id",
    "practitioners": "{row}.organization_id",
    "treatment_types": "{row}.organization_id",
    "practitioner_clinics": "(SELECT organization_id FROM practitioners WHERE id = {row}.practitioner_id)",
    "practitioner_treatment_types": "(SELECT organization_id FROM practitioners WHERE id = {row}.practitioner_id)",
    "working_hours": "(SELECT organization_id FROM practitioners WHERE id = {row}.practitioner_id)",
    "clinic_opening_hours": "(SELECT organization_id FROM clinics WHERE id = {row}.clinic_id)",
    "clinic_closures": "(SELECT organization_id FROM clinics WHERE id = {row}.clinic_id)",
}
EVENTS = {"insert": ("NEW",), "update": ("OLD", "NEW"), "delete": ("OLD",)}


def upgrade() -> None:
    with op.batch_alter_table("organizations") as batch:
        batch.add_column(sa.Column("setup_version", sa.BigInteger(), server_default="0", nullable=False))
    if op.get_context().dialect.name == "postgresql":
        _postgresql_triggers()
    else:
        _sqlite_triggers()


def _postgresql_triggers() -> None:
    op.execute("CREATE SEQUENCE setup_versions")
    for table, org in WATCHED.items():
        for event, rows in EVENTS.items():
            orgs = ", ".join(org.format(row=row) for row in rows)
            op.execute(
                f"""
                CREATE FUNCTION bump_setup_version_{table}_{event}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    UPDATE organizations SET setup_version = nextval('setup_versions') WHERE id IN ({orgs});
                    RETURN NULL;
                END $$
                """
            )
            op.execute(
                f"CREATE TRIGGER setup_version_{table}_{event} AFTER {event.upper()} ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION bump_setup_version_{table}_{event}()"
            )


def _sqlite_triggers() -> None:
    for table, org in WATCHED.items():
        for event, rows in EVENTS.items():
            orgs = ", ".join(org.format(row=row) for row in rows)
            # random(): 64 bits; abs() of the smallest one would overflow, hence the mask.
            op.execute(
                f"""
                CREATE TRIGGER setup_version_{table}_{event} AFTER {event.upper()} ON {table} FOR EACH ROW
                BEGIN
                    UPDATE organizations SET setup_version = (random() & 9223372036854775807) WHERE id IN ({orgs});
                END
                """
            )


def downgrade() -> None:
    postgresql = op.get_context().dialect.name == "postgresql"
    for table in WATCHED:
        for event in EVENTS:
            op.execute(f"DROP TRIGGER setup_version_{table}_{event}" + (f" ON {table}" if postgresql else ""))
            if postgresql:
                op.execute(f"DROP FUNCTION bump_setup_version_{table}_{event}()")
    if postgresql:
        op.execute("DROP SEQUENCE setup_versions")
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("setup_version")
