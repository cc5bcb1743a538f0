"""patients' language: what a patient reads (instructions, refusals) is in it

patients: `language`, a BCP 47 tag (`ar`, `en-GB`), optional.

Revision ID: 0018
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0016"  # main's head: 0014, 0015, 0017, 0016
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("patients", sa.Column("language", sa.String(35), nullable=True))


def downgrade() -> None:
    op.drop_column("patients", "language")
