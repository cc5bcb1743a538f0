"""courses: at most one active course per patient and treatment type

A session booked without `course_id` counts on the patient's active course of its type;
with two active, it counted on neither cap. Existing duplicates are resolved before the
partial unique index is created: the course with the most sessions (then the oldest)
stays active, the others are closed with a note saying why.

Revision ID: 0007
Revises: 0006
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

NOTE = "Closed by migration 0007: a second active course of the same treatment type."


def upgrade() -> None:
    courses = sa.table(
        "courses",
        sa.column("id", sa.String),
        sa.column("patient_id", sa.String),
        sa.column("treatment_type_id", sa.String),
        sa.column("status", sa.String),
        sa.column("sessions_completed", sa.Integer),
        sa.column("created_at", models.base.UTCDateTime(timezone=True)),
        sa.column("updated_at", models.base.UTCDateTime(timezone=True)),
        sa.column("notes", sa.Text),
        sa.column("version", sa.Integer),
    )
    rank = (
        sa.func.row_number()
        .over(
            partition_by=(courses.c.patient_id, courses.c.treatment_type_id),
            order_by=(courses.c.sessions_completed.desc(), courses.c.created_at, courses.c.id),
        )
        .label("n")
    )
    ranked = sa.select(courses.c.id, rank).where(courses.c.status == "active").subquery()
    extra = sa.select(ranked.c.id).where(ranked.c.n > 1)
    op.get_bind().execute(
        courses.update()
        .where(courses.c.id.in_(extra))
        .values(
            status="closed",
            version=courses.c.version + 1,
            updated_at=datetime.now(UTC),
            notes=sa.case((courses.c.notes.is_(None), NOTE), else_=courses.c.notes + "\n" + NOTE),
        )
    )
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.create_index(
            "uq_courses_one_active",
            ["patient_id", "treatment_type_id"],
            unique=True,
            postgresql_where=sa.text("status = 'active'"),
            sqlite_where=sa.text("status = 'active'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.drop_index("uq_courses_one_active")
