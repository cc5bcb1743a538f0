"""webhooks an integrator can operate: secret rotation, disabling after a long run of failures, redelivery

webhook_subscriptions: the secret a rotation replaced (sealed like `secret`) and until when it still
signs; when the subscription was disabled; the run of failed attempts since the last delivered one.
webhook_deliveries: when the API last asked for a delivery again (its retries count from then).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.add_column(sa.Column("previous_secret", sa.Text(), nullable=True))
        batch.add_column(sa.Column("previous_secret_expires_at", models.base.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("disabled_at", models.base.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("failing_since", models.base.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.add_column(sa.Column("redelivered_at", models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_column("redelivered_at")
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.drop_column("consecutive_failures")
        batch.drop_column("failing_since")
        batch.drop_column("disabled_at")
        batch.drop_column("previous_secret_expires_at")
        batch.drop_column("previous_secret")
