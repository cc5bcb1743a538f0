"""channels of API keys, booking policies, and staff overrides

api_keys.channel: `frontend` (a booking frontend acting for patients) or `staff`. Every key that
exists before this revision becomes `staff`: until now every key was trusted alike (it could record
clinical facts and book past every policy), so no integration loses what it could do; a key issued
from now on is `frontend` unless it is asked for as `staff`.
organizations, clinics and treatment_types.booking_policy: the object's own fields of the booking
policy (JSON; NULL or a missing field inherits). practitioners.bookable_online. appointments and
holds: the staff key that overrode a policy and its reason; holds.extended_at (extended once).

Revision ID: 0012
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None

SLOTS = ("appointments", "holds")


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        # The server default fills the existing rows with `staff`; the application names the
        # channel of every key it issues.
        batch.add_column(sa.Column("channel", sa.String(20), nullable=False, server_default="staff"))
    for table in ("organizations", "clinics", "treatment_types"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("booking_policy", sa.JSON(), nullable=True))
    with op.batch_alter_table("practitioners") as batch:
        batch.add_column(sa.Column("bookable_online", sa.Boolean(), nullable=False, server_default=sa.true()))
    for table in SLOTS:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("override_key_id", sa.String(40), nullable=True))
            batch.add_column(sa.Column("override_reason", sa.String(500), nullable=True))
    with op.batch_alter_table("holds") as batch:
        batch.add_column(sa.Column("extended_at", models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("holds") as batch:
        batch.drop_column("extended_at")
    for table in SLOTS:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("override_reason")
            batch.drop_column("override_key_id")
    with op.batch_alter_table("practitioners") as batch:
        batch.drop_column("bookable_online")
    for table in ("organizations", "clinics", "treatment_types"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("booking_policy")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("channel")
