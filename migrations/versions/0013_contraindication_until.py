"""temporary contraindications: patient_contraindications.until

A contraindication may be temporary (an isotretinoin course, a pregnancy, a flare): `until` is the
first local date on which it no longer applies. It is active for sessions on dates before it and
history from it on, without anyone resolving it. NULL (every row recorded before this revision):
permanent until resolved, as before.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


# Plain ADD/DROP COLUMN, not batch mode (as 0012): SQLite adds and drops a column in place.


def upgrade() -> None:
    op.add_column("patient_contraindications", sa.Column("until", sa.Date(), nullable=True))


def downgrade() -> None:
    op.drop_column("patient_contraindications", "until")
