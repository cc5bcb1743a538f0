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


def test_migrating_keeps_one_active_course_per_patient_and_type_closing_the_others(tmp_path):
    """Before 0007 a patient could hold two active courses of one type; the migration keeps the one
    with the most sessions active and closes the other with a note, then the index holds."""
    import pytest
    import sqlalchemy as sa
    from sqlalchemy.exc import IntegrityError

    from migrations import upgrade

    url, engine, now = _database_at(tmp_path, "0006")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO patients (id, organization_id, name, created_at, updated_at) "
                "VALUES ('pat_1', 'org_1', 'Pat', :now, :now)"
            ),
            {"now": now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO treatment_types (id, organization_id, name, kind, numbing_minutes, "
                "prep_minutes, procedure_minutes, aftercare_minutes, turnover_minutes, allowed_areas, "
                "created_at, updated_at) VALUES ('tt_1', 'org_1', 'MN', 'microneedling', 30, 5, 30, 10, "
                "10, '[]', :now, :now)"
            ),
            {"now": now},
        )
        for course_id, sessions in (("crs_a", 0), ("crs_b", 2), ("crs_c", 1)):
            conn.execute(
                sa.text(
                    "INSERT INTO courses (id, organization_id, patient_id, treatment_type_id, indication, "
                    "max_sessions, status, sessions_completed, created_at, updated_at) "
                    "VALUES (:id, 'org_1', 'pat_1', 'tt_1', "
                    "'acne_scars', 4, 'active', :sessions, :now, :now)"
                ),
                {"id": course_id, "sessions": sessions, "now": now},
            )
    upgrade(url)
    with engine.begin() as conn:
        rows = dict(conn.execute(sa.text("SELECT id, status FROM courses")).all())
        notes = conn.scalar(sa.text("SELECT notes FROM courses WHERE id = 'crs_a'"))
    assert rows == {"crs_a": "closed", "crs_b": "active", "crs_c": "closed"}
    assert "0007" in notes
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(sa.text("UPDATE courses SET status = 'active' WHERE id = 'crs_a'"))
    engine.dispose()


def test_migrating_seals_the_webhook_secrets_kept_in_clear(tmp_path):
    """Before 0008 a webhook's signing secret was stored as issued; after it, only sealed, and it still opens."""
    import sqlalchemy as sa

    from migrations import upgrade
    from models.sealed import PREFIX, unseal

    url, engine, now = _database_at(tmp_path, "0007")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO webhook_subscriptions (id, organization_id, url, event_types, secret, status, version, "
                "created_at, updated_at) VALUES ('whk_1', 'org_1', 'https://example.com/h', '[]', 'whsec_plain', "
                "'active', 1, :now, :now)"
            ),
            {"now": now},
        )
    upgrade(url)
    with engine.begin() as conn:
        stored = conn.scalar(sa.text("SELECT secret FROM webhook_subscriptions WHERE id = 'whk_1'"))
    assert stored.startswith(PREFIX) and "whsec_plain" not in stored
    assert unseal(stored) == "whsec_plain"
    engine.dispose()


def test_migrating_keeps_webhook_subscriptions_active_with_no_rotation_and_no_run_of_failures(tmp_path):
    """0009 adds the rotation, the failure run and the redelivery columns: what was there stays as it was."""
    import sqlalchemy as sa

    from migrations import upgrade
    from models.sealed import seal

    url, engine, now = _database_at(tmp_path, "0008")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO webhook_subscriptions (id, organization_id, url, event_types, secret, status, version, "
                "created_at, updated_at) VALUES ('whk_1', 'org_1', 'https://example.com/h', '[]', :secret, "
                "'active', 3, :now, :now)"
            ),
            {"now": now, "secret": seal("whsec_kept")},
        )
    upgrade(url)
    with engine.begin() as conn:
        row = conn.execute(
            sa.text(
                "SELECT status, version, consecutive_failures, failing_since, previous_secret, "
                "previous_secret_expires_at, disabled_at FROM webhook_subscriptions WHERE id = 'whk_1'"
            )
        ).one()
        delivery_columns = {c["name"] for c in sa.inspect(conn).get_columns("webhook_deliveries")}
    assert tuple(row) == ("active", 3, 0, None, None, None, None)
    assert "redelivered_at" in delivery_columns
    engine.dispose()


def _database_at(tmp_path, revision: str):
    """A SQLite database migrated to `revision`, with one organization ('org_1'): (url, engine, a timestamp)."""
    import sqlalchemy as sa

    from migrations import upgrade
    from models import make_engine

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    upgrade(url, revision)
    engine = make_engine(url)
    now = "2027-01-04 08:00:00.000000"
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO organizations (id, name, created_at, updated_at) VALUES ('org_1', 'Old', :now, :now)"),
            {"now": now},
        )
    return url, engine, now


def test_migrating_gives_every_claim_its_pool_and_keeps_the_overlap_guard(backend, tmp_path):
    """0010 fills `pool` for the claims already there (a unit's pool is its resource without '#<n>',
    a single resource is its own), makes it required and indexes it; the database still refuses
    two intersecting claims on one unit (SQLite's trigger survives the table's rebuild)."""
    import pytest
    import sqlalchemy as sa
    from sqlalchemy.exc import DBAPIError

    from migrations import upgrade

    with _database_at_on(backend, tmp_path, "0009") as (url, engine, _now):
        claims = {
            "numbing:cln_a_1#2": "numbing:cln_a_1",
            "device:cln_a_1#10": "device:cln_a_1",
            "room:rm_b12": "room:rm_b12",
            "practitioner:prac_9": "practitioner:prac_9",
        }
        with engine.begin() as conn:
            for resource in claims:
                conn.execute(
                    sa.text(
                        "INSERT INTO claims (organization_id, resource, starts_at, ends_at) "
                        "VALUES ('org_1', :resource, '2027-01-04 10:00:00+00', '2027-01-04 11:00:00+00')"
                    ),
                    {"resource": resource},
                )
        upgrade(url)
        with engine.begin() as conn:
            assert dict(conn.execute(sa.text("SELECT resource, pool FROM claims")).all()) == claims
            inspector = sa.inspect(conn)
            assert {"ix_claims_pool_starts", "ix_claims_resource_starts"} <= {
                i["name"] for i in inspector.get_indexes("claims")
            }
            assert not next(c for c in inspector.get_columns("claims") if c["name"] == "pool")["nullable"]
        with pytest.raises(DBAPIError), engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO claims (organization_id, resource, pool, starts_at, ends_at) VALUES ('org_1', "
                    "'numbing:cln_a_1#2', 'numbing:cln_a_1', '2027-01-04 10:30:00+00', '2027-01-04 11:30:00+00')"
                )
            )


def _database_at_on(backend, tmp_path, revision: str):
    """_database_at on the test's backend: SQLite, or a scratch PostgreSQL database dropped afterwards."""
    from contextlib import contextmanager

    import sqlalchemy as sa

    from migrations import upgrade
    from models import make_engine
    from tests.scaffold import scratch_database

    @contextmanager
    def database():
        if backend[0] == "sqlite":
            url, engine, now = _database_at(tmp_path, revision)
            try:
                yield url, engine, now
            finally:
                engine.dispose()
            return
        with scratch_database(backend[1], "needlebook_migration", migrate=False) as url:
            upgrade(url, revision)
            engine = make_engine(url)
            now = "2027-01-04 08:00:00+00"
            with engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "INSERT INTO organizations (id, name, created_at, updated_at) "
                        "VALUES ('org_1', 'Old', :now, :now)"
                    ),
                    {"now": now},
                )
            try:
                yield url, engine, now
            finally:
                engine.dispose()

    return database()


def test_migrating_to_0013_keeps_every_contraindication_permanent_and_back(backend, tmp_path):
    """0013 adds `until` (NULL for every row already there: permanent until resolved, as before);
    the downgrade drops it and keeps the rows."""
    import sqlalchemy as sa
    from alembic import command

    from migrations import config, upgrade

    with _database_at_on(backend, tmp_path, "0012") as (url, engine, now):
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO patients (id, organization_id, name, created_at, updated_at) "
                    "VALUES ('pat_1', 'org_1', 'Pat', :now, :now)"
                ),
                {"now": now},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO patient_contraindications (patient_id, code, recorded_at) "
                    "VALUES ('pat_1', 'rosacea', :now)"
                ),
                {"now": now},
            )
        upgrade(url, "0013")
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT code, until FROM patient_contraindications")).all() == [
                ("rosacea", None)
            ]
        command.downgrade(config(url), "0012")
        with engine.begin() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("patient_contraindications")}
            assert "until" not in columns
            assert conn.scalar(sa.text("SELECT code FROM patient_contraindications")) == "rosacea"


def test_migrating_to_0014_leaves_who_did_what_null_on_existing_appointments_and_downgrades(tmp_path):
    """0014 adds who created, rescheduled and cancelled an appointment, its reschedule's reason and
    rescheduled_to: nothing was recorded before, so an appointment already there reads null; the
    columns go again on a downgrade, the row kept."""
    import sqlite3

    import sqlalchemy as sa
    from alembic import command

    from migrations import config, upgrade

    added = (
        "rescheduled_to",
        "created_by_key_id",
        "created_by_channel",
        "rescheduled_by_key_id",
        "rescheduled_by_channel",
        "reschedule_reason",
        "cancelled_by_key_id",
        "cancelled_by_channel",
    )
    url, engine, now = _database_at(tmp_path, "0012")
    # The appointment alone, through sqlite3 itself with foreign keys off (the engine turns them on
    # for every connection): its clinic, practitioner and the rest do not matter here.
    raw = sqlite3.connect(tmp_path / "old.sqlite3")
    with raw:
        raw.execute(
            "INSERT INTO appointments (id, organization_id, status, clinic_id, practitioner_id, room_id, "
            "patient_id, treatment_type_id, starts_at, procedure_starts_at, ends_at, created_at, updated_at) "
            "VALUES ('appt_1', 'org_1', 'booked', 'cln_1', 'prac_1', 'rm_1', 'pat_1', 'tt_1', ?, ?, ?, ?, ?)",
            (now,) * 5,
        )
    raw.close()
    upgrade(url, "0014")
    with engine.connect() as conn:
        row = conn.execute(sa.text(f"SELECT {', '.join(added)} FROM appointments WHERE id = 'appt_1'")).one()
        assert tuple(row) == (None,) * len(added)
    command.downgrade(config(url), "-1")  # 0014 alone, whatever revision it follows
    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("appointments")}
        assert not columns & set(added)
        assert conn.execute(sa.text("SELECT id FROM appointments")).scalars().all() == ["appt_1"]
    engine.dispose()


def test_migrating_to_0017_keeps_holds_and_their_claims_and_lets_a_hold_wait_for_its_patient(backend, tmp_path):
    """0017 rebuilds holds on SQLite (patient_id becomes nullable) while claims and follow-ups
    reference it: the hold, its claim and every key stay; a hold without a patient is then allowed.
    The downgrade drops such holds (and their claims) and keeps the others."""
    import sqlalchemy as sa
    from alembic import command

    from migrations import config, upgrade

    with _database_at_on(backend, tmp_path, "0014") as (url, engine, now):
        with engine.begin() as conn:
            for sql in (
                "INSERT INTO patients (id, organization_id, name, created_at, updated_at) "
                "VALUES ('pat_1', 'org_1', 'Pat', :now, :now)",
                "INSERT INTO clinics (id, organization_id, name, timezone, created_at, updated_at) "
                "VALUES ('cln_1', 'org_1', 'Soho', 'Europe/London', :now, :now)",
                "INSERT INTO rooms (id, organization_id, clinic_id, name, capabilities, created_at, updated_at) "
                "VALUES ('rm_1', 'org_1', 'cln_1', 'R', '[]', :now, :now)",
                "INSERT INTO practitioners (id, organization_id, name, created_at, updated_at) "
                "VALUES ('prac_1', 'org_1', 'Dr', :now, :now)",
                "INSERT INTO treatment_types (id, organization_id, name, kind, numbing_minutes, prep_minutes, "
                "procedure_minutes, aftercare_minutes, turnover_minutes, allowed_areas, created_at, updated_at) "
                "VALUES ('tt_1', 'org_1', 'C', 'consultation', 0, 0, 30, 0, 0, '[]', :now, :now)",
                "INSERT INTO api_keys (id, organization_id, name, digest, prefix, scopes, channel, created_at, "
                "updated_at) VALUES ('key_1', 'org_1', 'admin', 'd', 'nbk_x', '[]', 'staff', :now, :now)",
            ):
                conn.execute(sa.text(sql), {"now": now})
            for hold_id, patient in (("hold_1", "'pat_1'"), ("hold_2", "'pat_1'")):
                conn.execute(
                    sa.text(
                        "INSERT INTO holds (id, organization_id, clinic_id, practitioner_id, room_id, patient_id, "
                        "treatment_type_id, starts_at, procedure_starts_at, ends_at, source, expires_at, "
                        f"created_at, updated_at) VALUES (:id, 'org_1', 'cln_1', 'prac_1', 'rm_1', {patient}, "
                        "'tt_1', :now, :now, :now, 'frontend', :now, :now, :now)"
                    ),
                    {"id": hold_id, "now": now},
                )
            conn.execute(
                sa.text(
                    "INSERT INTO claims (organization_id, resource, pool, starts_at, ends_at, hold_id) "
                    "VALUES ('org_1', 'room:rm_1', 'room:rm_1', '2027-01-04 09:00:00', '2027-01-04 10:00:00', "
                    "'hold_1')"
                )
            )
        upgrade(url, "0017")
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT hold_id FROM claims")).scalars().all() == ["hold_1"]
            assert conn.execute(sa.text("SELECT kind FROM api_keys")).scalars().all() == ["secret"]
            conn.execute(sa.text("UPDATE holds SET patient_id = NULL, hold_token_digest = 'x' WHERE id = 'hold_2'"))
            conn.execute(sa.text("UPDATE appointments SET manage_token_digest = NULL"))
        command.downgrade(config(url), "0014")
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT id FROM holds")).scalars().all() == ["hold_1"]
            assert conn.execute(sa.text("SELECT hold_id FROM claims")).scalars().all() == ["hold_1"]
            assert "kind" not in {c["name"] for c in sa.inspect(conn).get_columns("api_keys")}


def test_migrating_to_0015_adds_course_plans_and_goes_back_on_both_backends(backend, tmp_path):
    """0015 adds the course_plans table and the plan's id on holds and appointments (NULL on every
    row already there, nullable: nothing was planned before); the downgrade drops them, and the
    upgrade runs again on the downgraded database."""
    import sqlalchemy as sa
    from alembic import command

    from migrations import config, upgrade

    with _database_at_on(backend, tmp_path, "0014") as (url, engine, _now):
        upgrade(url, "0015")
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            assert "course_plans" in inspector.get_table_names()
            for table in ("holds", "appointments"):
                [column] = [c for c in inspector.get_columns(table) if c["name"] == "course_plan_id"]
                assert column["nullable"]
                assert f"ix_{table}_course_plan_id" in {i["name"] for i in inspector.get_indexes(table)}
        command.downgrade(config(url), "0014")
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            assert "course_plans" not in inspector.get_table_names()
            for table in ("holds", "appointments"):
                assert "course_plan_id" not in {c["name"] for c in inspector.get_columns(table)}
            assert conn.scalar(sa.text("SELECT id FROM organizations")) == "org_1"
        upgrade(url, "0015")
