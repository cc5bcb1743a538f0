"""claims: ix_claims_resource_starts with varchar_pattern_ops

The availability loader reads pooled units by prefix (resource LIKE
'numbing:<clinic>#%'). Unless the database collation is C, a default btree
cannot serve a LIKE prefix, so the OR with it made PostgreSQL scan the whole
claims table. With varchar_pattern_ops the same index serves the equality
lookups and the prefix ranges. SQLite is unchanged.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 23:05:00.000000
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_claims_resource_starts", table_name="claims")
    op.create_index(
        "ix_claims_resource_starts",
        "claims",
        ["resource", "starts_at"],
        unique=False,
        postgresql_ops={"resource": "varchar_pattern_ops"},
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_claims_resource_starts", table_name="claims")
    op.create_index("ix_claims_resource_starts", "claims", ["resource", "starts_at"], unique=False)
