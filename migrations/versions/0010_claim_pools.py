"""claims: `pool`, the resource without its unit, and ix_claims_pool_starts (pool, starts_at)

Pooled units (`numbing:<clinic>#<n>`, `device:<clinic>#<n>`) were found by a prefix match on
`resource` (LIKE 'numbing:<clinic>#%'). On (resource, starts_at) a prefix is a range over the
first column only, so the time bounds could not narrow it: every search and every booking's
conflict check walked the pool's whole history. `pool` names what a claim counts against
(`numbing:cln_x` for unit 2, the resource itself for a single resource: never NULL), so
`pool IN (...) AND starts_at >= a AND starts_at < b` is one tight range per pool on the new
index, pooled or not. The application sets it from the resource (models.booking.Claim);
rows written before are filled here with SQL both backends run (the unit is always `#<digits>`
and no id contains `#`).

SQLite cannot make a column NOT NULL in place: the table is rebuilt (batch), which drops its
triggers, so claims_no_overlap (0002) is created again, unchanged.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# The trigger of migration 0002, as it was.
NO_OVERLAP_TRIGGER = (
    "CREATE TRIGGER claims_no_overlap BEFORE INSERT ON claims "
    "WHEN EXISTS (SELECT 1 FROM claims WHERE resource = NEW.resource "
    "AND starts_at < NEW.ends_at AND NEW.starts_at < ends_at) "
    "BEGIN SELECT RAISE(ABORT, 'claims overlap on one resource'); END"
)

# 'numbing:cln_x#12' -> 'numbing:cln_x' (the digits, then the '#'); 'room:rm_1' stays itself.
FILL_POOL = (
    "UPDATE claims SET pool = CASE WHEN resource LIKE '%#%' "
    "THEN rtrim(rtrim(resource, '0123456789'), '#') ELSE resource END"
)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.add_column("claims", sa.Column("pool", sa.String(length=100), nullable=True))
    op.execute(FILL_POOL)
    if sqlite:
        with op.batch_alter_table("claims", recreate="always") as batch:
            batch.alter_column("pool", existing_type=sa.String(length=100), nullable=False)
        op.execute("DROP TRIGGER IF EXISTS claims_no_overlap")
        op.execute(NO_OVERLAP_TRIGGER)
    else:
        op.alter_column("claims", "pool", existing_type=sa.String(length=100), nullable=False)
    op.create_index("ix_claims_pool_starts", "claims", ["pool", "starts_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_claims_pool_starts", table_name="claims")
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("claims", recreate="always") as batch:
            batch.drop_column("pool")
        op.execute("DROP TRIGGER IF EXISTS claims_no_overlap")
        op.execute(NO_OVERLAP_TRIGGER)
    else:
        op.drop_column("claims", "pool")
