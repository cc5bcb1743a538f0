"""The schema Alembic builds is the schema the models describe."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from models import Base


def test_migrated_schema_matches_the_models(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_migrations_reach_a_single_head():
    from alembic.script import ScriptDirectory

    from migrations import config

    assert len(ScriptDirectory.from_config(config("sqlite://")).get_heads()) == 1
