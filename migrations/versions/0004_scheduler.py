"""scheduler: follow-up proposals, the outbox of domain events, the scheduler lease; indexes for the sweeps

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 00:34:11.192145
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduler_leases",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("holder", sa.String(length=100), nullable=False),
        sa.Column("expires_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("acquired_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_leases")),
    )
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=60), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("occurred_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_outbox_events_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_outbox_events_dedupe_key")),
    )
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_events_org_id", ["organization_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_events_subject_id"), ["subject_id"], unique=False)

    op.create_table(
        "follow_ups",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("appointment_id", sa.String(length=40), nullable=False),
        sa.Column("patient_id", sa.String(length=40), nullable=False),
        sa.Column("clinic_id", sa.String(length=40), nullable=False),
        sa.Column("treatment_type_id", sa.String(length=40), nullable=False),
        sa.Column("course_id", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("window_starts_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("window_ends_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("hold_id", sa.String(length=40), nullable=True),
        sa.Column("booked_appointment_id", sa.String(length=40), nullable=True),
        sa.Column("reason_code", sa.String(length=40), nullable=True),
        sa.Column("reason_detail", sa.String(length=500), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"], ["appointments.id"], name=op.f("fk_follow_ups_appointment_id_appointments")
        ),
        sa.ForeignKeyConstraint(
            ["booked_appointment_id"],
            ["appointments.id"],
            name=op.f("fk_follow_ups_booked_appointment_id_appointments"),
        ),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"], name=op.f("fk_follow_ups_clinic_id_clinics")),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"], name=op.f("fk_follow_ups_course_id_courses")),
        sa.ForeignKeyConstraint(["hold_id"], ["holds.id"], name=op.f("fk_follow_ups_hold_id_holds")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_follow_ups_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_follow_ups_patient_id_patients")),
        sa.ForeignKeyConstraint(
            ["treatment_type_id"], ["treatment_types.id"], name=op.f("fk_follow_ups_treatment_type_id_treatment_types")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_ups")),
        sa.UniqueConstraint("appointment_id", name=op.f("uq_follow_ups_appointment_id")),
    )
    with op.batch_alter_table("follow_ups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_follow_ups_hold_id"), ["hold_id"], unique=False)
        batch_op.create_index("ix_follow_ups_org_window", ["organization_id", "window_starts_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_follow_ups_organization_id"), ["organization_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_follow_ups_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_follow_ups_updated_at"), ["updated_at"], unique=False)

    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.create_index("ix_appointments_completed", ["completed_at"], unique=False)
        batch_op.create_index("ix_appointments_starts", ["starts_at"], unique=False)

    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.create_index("ix_holds_expires", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.drop_index("ix_holds_expires")

    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.drop_index("ix_appointments_starts")
        batch_op.drop_index("ix_appointments_completed")

    with op.batch_alter_table("follow_ups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_follow_ups_updated_at"))
        batch_op.drop_index(batch_op.f("ix_follow_ups_patient_id"))
        batch_op.drop_index(batch_op.f("ix_follow_ups_organization_id"))
        batch_op.drop_index("ix_follow_ups_org_window")
        batch_op.drop_index(batch_op.f("ix_follow_ups_hold_id"))

    op.drop_table("follow_ups")
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_events_subject_id"))
        batch_op.drop_index("ix_outbox_events_org_id")

    op.drop_table("outbox_events")
    op.drop_table("scheduler_leases")
