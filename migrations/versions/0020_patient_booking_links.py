"""patients' booking links: the personal link a clinic sends a returning patient

`patient_booking_links`: one patient's link, its token stored as its SHA-256 only (`token_digest`,
unique), what the page preselects (`treatment_type_id`, `course_id`), when it ends (`expires_at`)
and when it was revoked. A new table only: nothing existing changes.

Revision ID: 0020
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

INSTANT = models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "patient_booking_links",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("patient_id", sa.String(length=40), nullable=False),
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("treatment_type_id", sa.String(length=40), nullable=True),
        sa.Column("course_id", sa.String(length=40), nullable=True),
        sa.Column("created_by_key_id", sa.String(length=40), nullable=True),
        sa.Column("expires_at", INSTANT, nullable=False),
        sa.Column("revoked_at", INSTANT, nullable=True),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"], name=op.f("fk_patient_booking_links_course_id_courses")),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_patient_booking_links_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_patient_booking_links_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["treatment_type_id"],
            ["treatment_types.id"],
            name=op.f("fk_patient_booking_links_treatment_type_id_treatment_types"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_booking_links")),
        sa.UniqueConstraint("token_digest", name=op.f("uq_patient_booking_links_token_digest")),
    )
    with op.batch_alter_table("patient_booking_links") as batch:
        batch.create_index(batch.f("ix_patient_booking_links_organization_id"), ["organization_id"])
        batch.create_index(batch.f("ix_patient_booking_links_patient_id"), ["patient_id"])
        batch.create_index(batch.f("ix_patient_booking_links_updated_at"), ["updated_at"])


def downgrade() -> None:
    op.drop_table("patient_booking_links")
