"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21 21:29:33.833075
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "organizations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
    )
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_organizations_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("revoked_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_api_keys_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("digest", name=op.f("uq_api_keys_digest")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_organization_id"), ["organization_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_api_keys_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "clinics",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=500), nullable=True),
        sa.Column("archived_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_clinics_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clinics")),
    )
    with op.batch_alter_table("clinics", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_clinics_organization_id"), ["organization_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_clinics_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "patients",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_patients_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
    )
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patients_organization_id"), ["organization_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_patients_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "practitioners",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("archived_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_practitioners_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_practitioners")),
    )
    with op.batch_alter_table("practitioners", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_practitioners_organization_id"), ["organization_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_practitioners_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "treatment_types",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("numbing_minutes", sa.Integer(), nullable=False),
        sa.Column("prep_minutes", sa.Integer(), nullable=False),
        sa.Column("procedure_minutes", sa.Integer(), nullable=False),
        sa.Column("aftercare_minutes", sa.Integer(), nullable=False),
        sa.Column("turnover_minutes", sa.Integer(), nullable=False),
        sa.Column("min_interval_days", sa.Integer(), nullable=True),
        sa.Column("recommended_interval_days", sa.Integer(), nullable=True),
        sa.Column("max_sessions", sa.Integer(), nullable=True),
        sa.Column("consultation_valid_days", sa.Integer(), nullable=True),
        sa.Column("allowed_areas", sa.JSON(), nullable=False),
        sa.Column("required_capability", sa.String(length=64), nullable=True),
        sa.Column("archived_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_treatment_types_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_treatment_types")),
    )
    with op.batch_alter_table("treatment_types", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_treatment_types_organization_id"), ["organization_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_treatment_types_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "clinic_closures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.String(length=40), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"], name=op.f("fk_clinic_closures_clinic_id_clinics")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clinic_closures")),
    )
    with op.batch_alter_table("clinic_closures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_clinic_closures_clinic_id"), ["clinic_id"], unique=False)

    op.create_table(
        "clinic_opening_hours",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.String(length=40), nullable=False),
        sa.Column("weekday", sa.SmallInteger(), nullable=False),
        sa.Column("start_minute", sa.SmallInteger(), nullable=False),
        sa.Column("end_minute", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"], name=op.f("fk_clinic_opening_hours_clinic_id_clinics")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clinic_opening_hours")),
    )
    with op.batch_alter_table("clinic_opening_hours", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_clinic_opening_hours_clinic_id"), ["clinic_id"], unique=False)

    op.create_table(
        "courses",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("patient_id", sa.String(length=40), nullable=False),
        sa.Column("treatment_type_id", sa.String(length=40), nullable=False),
        sa.Column("indication", sa.String(length=40), nullable=False),
        sa.Column("max_sessions", sa.Integer(), nullable=False),
        sa.Column("max_sessions_per_365_days", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("sessions_completed", sa.Integer(), nullable=False),
        sa.Column("last_session_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_courses_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_courses_patient_id_patients")),
        sa.ForeignKeyConstraint(
            ["treatment_type_id"], ["treatment_types.id"], name=op.f("fk_courses_treatment_type_id_treatment_types")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_courses")),
    )
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_courses_organization_id"), ["organization_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_courses_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_courses_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "patient_contraindications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=True),
        sa.Column("resolved_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_patient_contraindications_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_contraindications")),
    )
    with op.batch_alter_table("patient_contraindications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patient_contraindications_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "practitioner_clinics",
        sa.Column("practitioner_id", sa.String(length=40), nullable=False),
        sa.Column("clinic_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"], name=op.f("fk_practitioner_clinics_clinic_id_clinics")),
        sa.ForeignKeyConstraint(
            ["practitioner_id"],
            ["practitioners.id"],
            name=op.f("fk_practitioner_clinics_practitioner_id_practitioners"),
        ),
        sa.PrimaryKeyConstraint("practitioner_id", "clinic_id", name=op.f("pk_practitioner_clinics")),
    )
    with op.batch_alter_table("practitioner_clinics", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_practitioner_clinics_clinic_id"), ["clinic_id"], unique=False)

    op.create_table(
        "practitioner_treatment_types",
        sa.Column("practitioner_id", sa.String(length=40), nullable=False),
        sa.Column("treatment_type_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["practitioner_id"],
            ["practitioners.id"],
            name=op.f("fk_practitioner_treatment_types_practitioner_id_practitioners"),
        ),
        sa.ForeignKeyConstraint(
            ["treatment_type_id"],
            ["treatment_types.id"],
            name=op.f("fk_practitioner_treatment_types_treatment_type_id_treatment_types"),
        ),
        sa.PrimaryKeyConstraint("practitioner_id", "treatment_type_id", name=op.f("pk_practitioner_treatment_types")),
    )
    with op.batch_alter_table("practitioner_treatment_types", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_practitioner_treatment_types_treatment_type_id"), ["treatment_type_id"], unique=False
        )

    op.create_table(
        "rooms",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("clinic_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("capabilities", sa.JSON(), nullable=False),
        sa.Column("archived_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"], name=op.f("fk_rooms_clinic_id_clinics")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_rooms_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rooms")),
    )
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rooms_clinic_id"), ["clinic_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rooms_organization_id"), ["organization_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rooms_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "time_off",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("practitioner_id", sa.String(length=40), nullable=False),
        sa.Column("starts_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_time_off_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["practitioner_id"], ["practitioners.id"], name=op.f("fk_time_off_practitioner_id_practitioners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_time_off")),
    )
    with op.batch_alter_table("time_off", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_time_off_organization_id"), ["organization_id"], unique=False)
        batch_op.create_index("ix_time_off_practitioner_range", ["practitioner_id", "starts_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_time_off_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "working_hours",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practitioner_id", sa.String(length=40), nullable=False),
        sa.Column("clinic_id", sa.String(length=40), nullable=False),
        sa.Column("weekday", sa.SmallInteger(), nullable=False),
        sa.Column("start_minute", sa.SmallInteger(), nullable=False),
        sa.Column("end_minute", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"], name=op.f("fk_working_hours_clinic_id_clinics")),
        sa.ForeignKeyConstraint(
            ["practitioner_id"], ["practitioners.id"], name=op.f("fk_working_hours_practitioner_id_practitioners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_working_hours")),
    )
    with op.batch_alter_table("working_hours", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_working_hours_clinic_id"), ["clinic_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_working_hours_practitioner_id"), ["practitioner_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("working_hours", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_working_hours_practitioner_id"))
        batch_op.drop_index(batch_op.f("ix_working_hours_clinic_id"))

    op.drop_table("working_hours")
    with op.batch_alter_table("time_off", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_time_off_updated_at"))
        batch_op.drop_index("ix_time_off_practitioner_range")
        batch_op.drop_index(batch_op.f("ix_time_off_organization_id"))

    op.drop_table("time_off")
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rooms_updated_at"))
        batch_op.drop_index(batch_op.f("ix_rooms_organization_id"))
        batch_op.drop_index(batch_op.f("ix_rooms_clinic_id"))

    op.drop_table("rooms")
    with op.batch_alter_table("practitioner_treatment_types", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_practitioner_treatment_types_treatment_type_id"))

    op.drop_table("practitioner_treatment_types")
    with op.batch_alter_table("practitioner_clinics", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_practitioner_clinics_clinic_id"))

    op.drop_table("practitioner_clinics")
    with op.batch_alter_table("patient_contraindications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patient_contraindications_patient_id"))

    op.drop_table("patient_contraindications")
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_courses_updated_at"))
        batch_op.drop_index(batch_op.f("ix_courses_patient_id"))
        batch_op.drop_index(batch_op.f("ix_courses_organization_id"))

    op.drop_table("courses")
    with op.batch_alter_table("clinic_opening_hours", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clinic_opening_hours_clinic_id"))

    op.drop_table("clinic_opening_hours")
    with op.batch_alter_table("clinic_closures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clinic_closures_clinic_id"))

    op.drop_table("clinic_closures")
    with op.batch_alter_table("treatment_types", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_treatment_types_updated_at"))
        batch_op.drop_index(batch_op.f("ix_treatment_types_organization_id"))

    op.drop_table("treatment_types")
    with op.batch_alter_table("practitioners", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_practitioners_updated_at"))
        batch_op.drop_index(batch_op.f("ix_practitioners_organization_id"))

    op.drop_table("practitioners")
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patients_updated_at"))
        batch_op.drop_index(batch_op.f("ix_patients_organization_id"))

    op.drop_table("patients")
    with op.batch_alter_table("clinics", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clinics_updated_at"))
        batch_op.drop_index(batch_op.f("ix_clinics_organization_id"))

    op.drop_table("clinics")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_updated_at"))
        batch_op.drop_index(batch_op.f("ix_api_keys_organization_id"))

    op.drop_table("api_keys")
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_organizations_updated_at"))

    op.drop_table("organizations")
