"""calendars: iCalendar feed tokens; external calendars and their expanded busy times

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 01:00:14.265516
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendar_feeds",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("owner_type", sa.String(length=20), nullable=False),
        sa.Column("owner_id", sa.String(length=40), nullable=False),
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("revoked_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_calendar_feeds_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_feeds")),
        sa.UniqueConstraint("token_digest", name=op.f("uq_calendar_feeds_token_digest")),
    )
    with op.batch_alter_table("calendar_feeds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calendar_feeds_organization_id"), ["organization_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_calendar_feeds_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_calendar_feeds_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "external_calendars",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("practitioner_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("source_url", sa.String(length=2000), nullable=True),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("fetched_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("expanded_until", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("last_error_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("archived_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_external_calendars_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["practitioner_id"], ["practitioners.id"], name=op.f("fk_external_calendars_practitioner_id_practitioners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_external_calendars")),
    )
    with op.batch_alter_table("external_calendars", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_external_calendars_organization_id"), ["organization_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_external_calendars_practitioner_id"), ["practitioner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_external_calendars_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "external_busy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("calendar_id", sa.String(length=40), nullable=False),
        sa.Column("practitioner_id", sa.String(length=40), nullable=False),
        sa.Column("starts_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["calendar_id"], ["external_calendars.id"], name=op.f("fk_external_busy_calendar_id_external_calendars")
        ),
        sa.ForeignKeyConstraint(
            ["practitioner_id"], ["practitioners.id"], name=op.f("fk_external_busy_practitioner_id_practitioners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_external_busy")),
    )
    with op.batch_alter_table("external_busy", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_external_busy_calendar_id"), ["calendar_id"], unique=False)
        batch_op.create_index("ix_external_busy_practitioner_starts", ["practitioner_id", "starts_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("external_busy", schema=None) as batch_op:
        batch_op.drop_index("ix_external_busy_practitioner_starts")
        batch_op.drop_index(batch_op.f("ix_external_busy_calendar_id"))

    op.drop_table("external_busy")
    with op.batch_alter_table("external_calendars", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_external_calendars_updated_at"))
        batch_op.drop_index(batch_op.f("ix_external_calendars_practitioner_id"))
        batch_op.drop_index(batch_op.f("ix_external_calendars_organization_id"))

    op.drop_table("external_calendars")
    with op.batch_alter_table("calendar_feeds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calendar_feeds_updated_at"))
        batch_op.drop_index(batch_op.f("ix_calendar_feeds_owner_id"))
        batch_op.drop_index(batch_op.f("ix_calendar_feeds_organization_id"))

    op.drop_table("calendar_feeds")
