"""course plans: a course's sessions held together (issue 17)

course_plans: one row per plan held with `"hold": true` (POST /v1/courses/{id}/plan), its status
(held, confirmed, released, expired) and the one expiry of its holds. holds.course_plan_id and
appointments.course_plan_id name the plan a hold was placed for and the appointment booked from
it; NULL on every existing row (nothing was planned before this revision).

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# The two new columns by plain ADD/DROP COLUMN, not batch mode (as 0012 and 0014): SQLite adds and
# drops a column in place when it has no foreign key, so they have none (the plan's id only).
PLANNED = ("appointments", "holds")


def upgrade() -> None:
    op.create_table(
        "course_plans",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("course_id", sa.String(length=40), nullable=False),
        sa.Column("patient_id", sa.String(length=40), nullable=False),
        sa.Column("treatment_type_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("expires_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("first_number", sa.Integer(), nullable=False),
        sa.Column("confirmed_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("released_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"], name=op.f("fk_course_plans_course_id_courses")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_course_plans_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_course_plans_patient_id_patients")),
        sa.ForeignKeyConstraint(
            ["treatment_type_id"],
            ["treatment_types.id"],
            name=op.f("fk_course_plans_treatment_type_id_treatment_types"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_course_plans")),
    )
    with op.batch_alter_table("course_plans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_course_plans_course_id"), ["course_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_course_plans_organization_id"), ["organization_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_course_plans_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index("ix_course_plans_status_expires", ["status", "expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_course_plans_updated_at"), ["updated_at"], unique=False)

    for table in PLANNED:
        op.add_column(table, sa.Column("course_plan_id", sa.String(length=40), nullable=True))
        op.create_index(f"ix_{table}_course_plan_id", table, ["course_plan_id"], unique=False)


def downgrade() -> None:
    for table in reversed(PLANNED):
        op.drop_index(f"ix_{table}_course_plan_id", table_name=table)
        op.drop_column(table, "course_plan_id")
    op.drop_table("course_plans")
