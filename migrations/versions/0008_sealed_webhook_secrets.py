"""webhook_subscriptions.secret: sealed at rest (models/sealed.py), never in clear

Signing needs the secret itself, so it cannot be a digest like API keys and feed tokens; it is
encrypted with the SECRETS_KEY (or instance/secrets-key). Existing secrets are sealed here.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from models.sealed import PREFIX, seal, unseal

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

subscriptions = sa.table("webhook_subscriptions", sa.column("id", sa.String), sa.column("secret", sa.Text))


def upgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.alter_column("secret", type_=sa.Text(), existing_type=sa.String(100), existing_nullable=False)
    _rewrite(lambda secret: secret if secret.startswith(PREFIX) else seal(secret))


def downgrade() -> None:
    _rewrite(lambda secret: unseal(secret) if secret.startswith(PREFIX) else secret)
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.alter_column("secret", type_=sa.String(100), existing_type=sa.Text(), existing_nullable=False)


def _rewrite(change) -> None:
    connection = op.get_bind()
    for row_id, secret in connection.execute(sa.select(subscriptions.c.id, subscriptions.c.secret)).all():
        connection.execute(subscriptions.update().where(subscriptions.c.id == row_id).values(secret=change(secret)))
