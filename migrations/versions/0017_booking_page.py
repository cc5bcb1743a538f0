"""booking from the browser: publishable keys, hold tokens, manage links, accepted terms

api_keys: `kind` (`secret` for every key there already, `publishable` for a `pk_...` key) and
`origins`, the browser origins a publishable key may be used from.
holds: `hold_token_digest`, the SHA-256 of the token that alone books a booking page's hold, and
`patient_id` nullable: such a hold has no patient until one registers as it is booked.
appointments: `manage_token_digest`, the SHA-256 of the patient's manage link token.
patients: `terms_accepted_at`, when a patient registering through a booking page accepted the terms.

Revision ID: 0017
Revises: 0015
"""

from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0017"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("kind", sa.String(20), server_default="secret", nullable=False))
    op.add_column("api_keys", sa.Column("origins", sa.JSON(), nullable=True))
    op.add_column("patients", sa.Column("terms_accepted_at", models.base.UTCDateTime(timezone=True), nullable=True))
    with _foreign_keys_off():
        with op.batch_alter_table("holds") as batch:
            batch.add_column(sa.Column("hold_token_digest", sa.String(64), nullable=True))
            batch.create_unique_constraint("uq_holds_hold_token_digest", ["hold_token_digest"])
            batch.alter_column("patient_id", existing_type=sa.String(40), nullable=True)
        with op.batch_alter_table("appointments") as batch:
            batch.add_column(sa.Column("manage_token_digest", sa.String(64), nullable=True))
            batch.create_unique_constraint("uq_appointments_manage_token_digest", ["manage_token_digest"])


def downgrade() -> None:
    # A booking page's hold that never got a patient cannot stay in a column that needs one.
    op.execute("DELETE FROM claims WHERE hold_id IN (SELECT id FROM holds WHERE patient_id IS NULL)")
    op.execute("DELETE FROM holds WHERE patient_id IS NULL")  # no follow-up names one: they have patients
    with _foreign_keys_off():
        with op.batch_alter_table("appointments") as batch:
            batch.drop_constraint("uq_appointments_manage_token_digest", type_="unique")
            batch.drop_column("manage_token_digest")
        with op.batch_alter_table("holds") as batch:
            batch.alter_column("patient_id", existing_type=sa.String(40), nullable=False)
            batch.drop_constraint("uq_holds_hold_token_digest", type_="unique")
            batch.drop_column("hold_token_digest")
    op.drop_column("patients", "terms_accepted_at")
    op.drop_column("api_keys", "origins")
    op.drop_column("api_keys", "kind")


@contextmanager
def _foreign_keys_off():
    """On SQLite, batch mode copies a table, drops the old one and renames the copy; with foreign
    keys on, dropping holds (which claims and follow-ups reference) deletes what references it or
    fails. SQLite's documented way (ALTER TABLE, "other kinds of table schema changes") is foreign
    keys off around the rebuild, then a foreign_key_check; the pragma is a no-op inside a
    transaction, so the migration's transaction is committed first and begun again after."""
    if op.get_bind().dialect.name != "sqlite":
        yield
        return
    op.execute("COMMIT")
    op.execute("PRAGMA foreign_keys=OFF")
    op.execute("BEGIN IMMEDIATE")
    yield
    broken = op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        raise RuntimeError(f"0017 left rows whose foreign keys point nowhere: {broken[:5]}")
    op.execute("COMMIT")
    op.execute("PRAGMA foreign_keys=ON")
    op.execute("BEGIN IMMEDIATE")
