"""who did what to an appointment

appointments: the API key (id and channel) that created, rescheduled and cancelled it
(`created_by_*`, `rescheduled_by_*`, `cancelled_by_*`), the reason given for a reschedule
(`reschedule_reason`), and the appointment that replaced it (`rescheduled_to`, the forward
twin of `rescheduled_from`). Every column is nullable and no existing row is filled in: what
was done before this revision was not recorded, so it reads as null. The key ids are plain
strings, without a foreign key: a revoked key is still named, and nothing cascades.

Revision ID: 0014
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# Plain ADD/DROP COLUMN, not batch mode, as in 0012: SQLite adds and drops a column in place only
# when it has no foreign key, so rescheduled_to has none (rescheduled_from, on the new row, has).
COLUMNS = (
    ("rescheduled_to", 40),
    ("created_by_key_id", 40),
    ("created_by_channel", 20),
    ("rescheduled_by_key_id", 40),
    ("rescheduled_by_channel", 20),
    ("reschedule_reason", 500),
    ("cancelled_by_key_id", 40),
    ("cancelled_by_channel", 20),
)


def upgrade() -> None:
    for name, length in COLUMNS:
        op.add_column("appointments", sa.Column(name, sa.String(length), nullable=True))


def downgrade() -> None:
    for name, _ in reversed(COLUMNS):
        op.drop_column("appointments", name)
