"""booking

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 21:41:56.554295
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "appointments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("rescheduled_from", sa.String(length=40), nullable=True),
        sa.Column("hold_id", sa.String(length=40), nullable=True),
        sa.Column("cancel_reason", sa.String(length=40), nullable=True),
        sa.Column("cancel_note", sa.String(length=1000), nullable=True),
        sa.Column("cancelled_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("checked_in_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("clinic_id", sa.String(length=40), nullable=False),
        sa.Column("practitioner_id", sa.String(length=40), nullable=False),
        sa.Column("room_id", sa.String(length=40), nullable=False),
        sa.Column("patient_id", sa.String(length=40), nullable=False),
        sa.Column("treatment_type_id", sa.String(length=40), nullable=False),
        sa.Column("course_id", sa.String(length=40), nullable=True),
        sa.Column("area", sa.String(length=40), nullable=True),
        sa.Column("starts_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("procedure_starts_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"], name=op.f("fk_appointments_clinic_id_clinics")),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"], name=op.f("fk_appointments_course_id_courses")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_appointments_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_appointments_patient_id_patients")),
        sa.ForeignKeyConstraint(
            ["practitioner_id"], ["practitioners.id"], name=op.f("fk_appointments_practitioner_id_practitioners")
        ),
        sa.ForeignKeyConstraint(
            ["rescheduled_from"], ["appointments.id"], name=op.f("fk_appointments_rescheduled_from_appointments")
        ),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"], name=op.f("fk_appointments_room_id_rooms")),
        sa.ForeignKeyConstraint(
            ["treatment_type_id"],
            ["treatment_types.id"],
            name=op.f("fk_appointments_treatment_type_id_treatment_types"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointments")),
    )
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.create_index("ix_appointments_clinic_starts", ["clinic_id", "starts_at"], unique=False)
        batch_op.create_index("ix_appointments_org_starts", ["organization_id", "starts_at"], unique=False)
        batch_op.create_index("ix_appointments_patient_starts", ["patient_id", "starts_at"], unique=False)
        batch_op.create_index("ix_appointments_practitioner_starts", ["practitioner_id", "starts_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_appointments_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "holds",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("expires_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("appointment_id", sa.String(length=40), nullable=True),
        sa.Column("clinic_id", sa.String(length=40), nullable=False),
        sa.Column("practitioner_id", sa.String(length=40), nullable=False),
        sa.Column("room_id", sa.String(length=40), nullable=False),
        sa.Column("patient_id", sa.String(length=40), nullable=False),
        sa.Column("treatment_type_id", sa.String(length=40), nullable=False),
        sa.Column("course_id", sa.String(length=40), nullable=True),
        sa.Column("area", sa.String(length=40), nullable=True),
        sa.Column("starts_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("procedure_starts_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"], name=op.f("fk_holds_clinic_id_clinics")),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"], name=op.f("fk_holds_course_id_courses")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_holds_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_holds_patient_id_patients")),
        sa.ForeignKeyConstraint(
            ["practitioner_id"], ["practitioners.id"], name=op.f("fk_holds_practitioner_id_practitioners")
        ),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"], name=op.f("fk_holds_room_id_rooms")),
        sa.ForeignKeyConstraint(
            ["treatment_type_id"], ["treatment_types.id"], name=op.f("fk_holds_treatment_type_id_treatment_types")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holds")),
    )
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.create_index("ix_holds_org_expires", ["organization_id", "expires_at"], unique=False)
        batch_op.create_index("ix_holds_patient_starts", ["patient_id", "starts_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_holds_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "past_sessions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("patient_id", sa.String(length=40), nullable=False),
        sa.Column("treatment_type_id", sa.String(length=40), nullable=False),
        sa.Column("course_id", sa.String(length=40), nullable=True),
        sa.Column("performed_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("provider", sa.String(length=200), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"], name=op.f("fk_past_sessions_course_id_courses")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_past_sessions_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_past_sessions_patient_id_patients")),
        sa.ForeignKeyConstraint(
            ["treatment_type_id"],
            ["treatment_types.id"],
            name=op.f("fk_past_sessions_treatment_type_id_treatment_types"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_past_sessions")),
    )
    with op.batch_alter_table("past_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_past_sessions_organization_id"), ["organization_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_past_sessions_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_past_sessions_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "claims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("resource", sa.String(length=100), nullable=False),
        sa.Column("starts_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("appointment_id", sa.String(length=40), nullable=True),
        sa.Column("hold_id", sa.String(length=40), nullable=True),
        sa.Column("expires_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("starts_at < ends_at", name=op.f("ck_claims_claim_range")),
        sa.ForeignKeyConstraint(
            ["appointment_id"], ["appointments.id"], name=op.f("fk_claims_appointment_id_appointments")
        ),
        sa.ForeignKeyConstraint(["hold_id"], ["holds.id"], name=op.f("fk_claims_hold_id_holds")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_claims_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_claims")),
    )
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_claims_appointment_id"), ["appointment_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_claims_hold_id"), ["hold_id"], unique=False)
        batch_op.create_index("ix_claims_resource_starts", ["resource", "starts_at"], unique=False)

    if op.get_bind().dialect.name == "sqlite":
        # SQLite has no exclusion constraints; writers are serialized by BEGIN
        # IMMEDIATE, and this trigger still gives the database the last word.
        op.execute(
            "CREATE TRIGGER claims_no_overlap BEFORE INSERT ON claims "
            "WHEN EXISTS (SELECT 1 FROM claims WHERE resource = NEW.resource "
            "AND starts_at < NEW.ends_at AND NEW.starts_at < ends_at) "
            "BEGIN SELECT RAISE(ABORT, 'claims overlap on one resource'); END"
        )
    if op.get_bind().dialect.name == "postgresql":
        # The database has the last word on overlaps: no two claims on one resource
        # may intersect, whatever the application checked before inserting.
        # btree_gist lets the gist index compare the resource key with '='.
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            "ALTER TABLE claims ADD CONSTRAINT ex_claims_resource_during "
            "EXCLUDE USING gist (resource WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&)"
        )

    with op.batch_alter_table("clinics", schema=None) as batch_op:
        batch_op.add_column(sa.Column("numbing_area_capacity", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("device_count", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clinics", schema=None) as batch_op:
        batch_op.drop_column("device_count")
        batch_op.drop_column("numbing_area_capacity")

    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.drop_index("ix_claims_resource_starts")
        batch_op.drop_index(batch_op.f("ix_claims_hold_id"))
        batch_op.drop_index(batch_op.f("ix_claims_appointment_id"))

    op.drop_table("claims")
    with op.batch_alter_table("past_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_past_sessions_updated_at"))
        batch_op.drop_index(batch_op.f("ix_past_sessions_patient_id"))
        batch_op.drop_index(batch_op.f("ix_past_sessions_organization_id"))

    op.drop_table("past_sessions")
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_holds_updated_at"))
        batch_op.drop_index("ix_holds_patient_starts")
        batch_op.drop_index("ix_holds_org_expires")

    op.drop_table("holds")
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_appointments_updated_at"))
        batch_op.drop_index("ix_appointments_practitioner_starts")
        batch_op.drop_index("ix_appointments_patient_starts")
        batch_op.drop_index("ix_appointments_org_starts")
        batch_op.drop_index("ix_appointments_clinic_starts")

    op.drop_table("appointments")
