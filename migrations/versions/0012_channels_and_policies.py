"""channels of API keys, booking policies, and staff overrides

api_keys.channel: `frontend` (a booking frontend acting for patients) or `staff`. Every key that
exists before this revision becomes `staff`: until now every key was trusted alike (it could record
clinical facts and book past every policy), so no integration loses what it could do; a key issued
from now on is `frontend` unless it is asked for as `staff`.
organizations, clinics and treatment_types.booking_policy: the object's own fields of the booking
policy (JSON; NULL or a missing field inherits). practitioners.bookable_online. appointments and
holds: the staff key that overrode a policy and its reason; holds.extended_at (extended once).

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SLOTS = ("appointments", "holds")


# Plain ADD/DROP COLUMN, not batch mode: on SQLite a batch would rebuild practitioners and the other
# set-up tables, which their setup_version triggers (0011) refuse; SQLite adds and drops columns in place.


def upgrade() -> None:
    # The server default fills the existing rows with `staff`; the application names the channel of
    # every key it issues.
    op.add_column("api_keys", sa.Column("channel", sa.String(20), nullable=False, server_default="staff"))
    for table in ("organizations", "clinics", "treatment_types"):
        op.add_column(table, sa.Column("booking_policy", sa.JSON(), nullable=True))
    op.add_column("practitioners", sa.Column("bookable_online", sa.Boolean(), nullable=False, server_default=sa.true()))
    for table in SLOTS:
        op.add_column(table, sa.Column("override_key_id", sa.String(40), nullable=True))
        op.add_column(table, sa.Column("override_reason", sa.String(500), nullable=True))
    op.add_column("holds", sa.Column("extended_at", models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("holds", "extended_at")
    for table in SLOTS:
        op.drop_column(table, "override_reason")
        op.drop_column(table, "override_key_id")
    op.drop_column("practitioners", "bookable_online")
    for table in ("organizations", "clinics", "treatment_types"):
        op.drop_column(table, "booking_policy")
    op.drop_column("api_keys", "channel")
