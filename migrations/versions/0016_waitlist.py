"""waitlist: entries waiting for a freed slot, and the offers (waitlist holds) made to them

`waitlist_entries`: a patient, a treatment type, the clinics (none: the whole chain), an optional
practitioner and course, a window and preferences, in join order. `waitlist_offers`: one row per
slot offered, naming its hold; the partial unique index `uq_waitlist_offers_one_live` keeps one
unanswered offer per entry, on both backends. New tables only: nothing existing changes.

Revision ID: 0016
Revises: 0017 (main had 0017 on 0014 when this was rebased; re-chain after 0015 as needed)
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0016"
down_revision = "0017"
branch_labels = None
depends_on = None

INSTANT = models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "waitlist_entries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("patient_id", sa.String(length=40), nullable=False),
        sa.Column("treatment_type_id", sa.String(length=40), nullable=False),
        sa.Column("clinic_ids", sa.JSON(), nullable=False),
        sa.Column("practitioner_id", sa.String(length=40), nullable=True),
        sa.Column("course_id", sa.String(length=40), nullable=True),
        sa.Column("window_starts_at", INSTANT, nullable=False),
        sa.Column("window_ends_at", INSTANT, nullable=False),
        sa.Column("weekdays", sa.JSON(), nullable=False),
        sa.Column("time_from", sa.Integer(), nullable=True),
        sa.Column("time_to", sa.Integer(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("appointment_id", sa.String(length=40), nullable=True),
        sa.Column("ended_at", INSTANT, nullable=True),
        sa.Column("archived_at", INSTANT, nullable=True),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"], ["appointments.id"], name=op.f("fk_waitlist_entries_appointment_id_appointments")
        ),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"], name=op.f("fk_waitlist_entries_course_id_courses")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_waitlist_entries_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_waitlist_entries_patient_id_patients")),
        sa.ForeignKeyConstraint(
            ["practitioner_id"], ["practitioners.id"], name=op.f("fk_waitlist_entries_practitioner_id_practitioners")
        ),
        sa.ForeignKeyConstraint(
            ["treatment_type_id"],
            ["treatment_types.id"],
            name=op.f("fk_waitlist_entries_treatment_type_id_treatment_types"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waitlist_entries")),
    )
    with op.batch_alter_table("waitlist_entries", schema=None) as batch_op:
        batch_op.create_index("ix_waitlist_entries_status_joined", ["status", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_waitlist_entries_organization_id"), ["organization_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_waitlist_entries_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_waitlist_entries_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "waitlist_offers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("entry_id", sa.String(length=40), nullable=False),
        sa.Column("hold_id", sa.String(length=40), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("answered_at", INSTANT, nullable=True),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["waitlist_entries.id"], name=op.f("fk_waitlist_offers_entry_id_waitlist_entries")
        ),
        sa.ForeignKeyConstraint(["hold_id"], ["holds.id"], name=op.f("fk_waitlist_offers_hold_id_holds")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_waitlist_offers_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waitlist_offers")),
        sa.UniqueConstraint("hold_id", name=op.f("uq_waitlist_offers_hold_id")),
    )
    with op.batch_alter_table("waitlist_offers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_waitlist_offers_entry_id"), ["entry_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_waitlist_offers_organization_id"), ["organization_id"], unique=False)
        # The database's word on "one live offer per entry" (models.waitlist.WaitlistOffer).
        batch_op.create_index(
            "uq_waitlist_offers_one_live",
            ["entry_id"],
            unique=True,
            postgresql_where=sa.text("outcome IS NULL"),
            sqlite_where=sa.text("outcome IS NULL"),
        )


def downgrade() -> None:
    op.drop_table("waitlist_offers")
    op.drop_table("waitlist_entries")
