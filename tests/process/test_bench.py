"""The benchmark's own pieces (make bench, make bench-quick): what its ratios rest on.

On a small generated chain (bench/make_data.py, 7 clinics, PostgreSQL): the reference
implementation (bench/reference_app.py) answers exactly what the product answers for every
scenario bench/run.py compares them on, the bare floor (bench/bare_app.py) reads its 10 rows
outside the app, and the goals writer computes the per-clinic cost and the verdicts from the
figures it is given.
"""

from __future__ import annotations

import os
import urllib.parse
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from api import create_app
from bench import make_data, run
from bench.bare_app import create_bare_app
from bench.reference_app import Reference
from models import make_engine

from ..scaffold import scratch_database

ADMIN = os.environ.get("TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="module")
def chain():
    try:
        probe = make_engine(ADMIN, connect_args={"connect_timeout": 3})
        with probe.connect():
            pass
        probe.dispose()
    except Exception:
        if os.environ.get("TEST_POSTGRES_URL") or os.environ.get("REQUIRE_POSTGRES"):
            raise
        pytest.skip("PostgreSQL is not reachable (set TEST_POSTGRES_URL)")
    with scratch_database(ADMIN, "needlebook_benchtest", migrate=False) as url:
        yield make_data.generate(300, url.replace("postgresql+psycopg://", "postgresql://"), seed=4, clinics=7)


def test_a_longer_chain_is_generated_with_pooled_clinics(chain):
    assert chain["clinics"] == len(chain["clinic_ids"]) == 7
    assert chain["pooled_clinic_id"] == chain["clinic_ids"][3]  # Amsterdam: numbing area and devices
    assert chain["counts"]["past_appointments"] == 300
    assert [spec["name"] for spec in make_data.chain(7)][5:] == ["Madrid 06", "Chicago 07"]
    assert make_data.parse_size("2k") == 2000 and make_data.parse_size("1m") == 1_000_000


def test_the_reference_answers_what_the_product_answers(chain):
    app = create_app({"DATABASE_URL": chain["url"], "RATE_LIMIT_ENABLED": False})
    client, auth = app.test_client(), {"Authorization": f"Bearer {chain['api_key']}"}
    reference = Reference(chain["url"])
    start = datetime.now(UTC).replace(second=0, microsecond=0)
    end = start + timedelta(days=7)
    engine = make_engine(chain["url"])
    with engine.connect() as conn:
        practitioner = conn.scalar(
            sa.text("SELECT practitioner_id FROM working_hours WHERE clinic_id = :c ORDER BY practitioner_id LIMIT 1"),
            {"c": chain["measured_clinic_id"]},
        )
    engine.dispose()
    common = {"treatment_type_id": chain["treatment_type_ids"]["microneedling"], "start": start, "end": end}
    queries = [
        {"clinic_id": chain["measured_clinic_id"], "limit": 500},
        {"clinic_id": chain["pooled_clinic_id"], "limit": 500},
        {"clinic_id": chain["measured_clinic_id"], "practitioner_id": practitioner, "limit": 500},
        {"limit": 10},
        {"limit": 500},
    ]
    found = 0
    for query in queries:
        query = {
            key: value.isoformat() if isinstance(value, datetime) else str(value)
            for key, value in {**common, **query}.items()
        }
        ours = client.get("/v1/availability?" + urllib.parse.urlencode(query), headers=auth)
        assert ours.status_code == 200
        theirs = orjson.loads(orjson.dumps({"data": reference.search(query), "reason": None}))
        assert theirs == ours.get_json(), query
        found += len(theirs["data"])
    assert found > 0  # the comparison compared slots, not empty answers
    app.extensions["db_engine"].dispose()


def test_the_bare_floor_reads_ten_rows_outside_the_app(chain):
    app = create_bare_app(chain["url"])
    app.test_client_class = FlaskClient  # not the API: outside the OpenAPI document the suite checks against
    answer = app.test_client().get("/bench/bare-floor")
    assert answer.status_code == 200
    rows = answer.get_json()["data"]
    assert len(rows) == 10 and rows == sorted(rows, key=lambda row: row["id"])
    assert set(rows[0]) == {"id", "clinic_id", "name", "capabilities", "created_at"}
    app.extensions["bare_engine"].dispose()


def _entry(rps: float, cpu_ms: float) -> dict:
    return {"rps": rps, "app_cpu_ms_per_request": cpu_ms, "db_cpu_ms_per_request": 0.0, "worker_peak_rss_mb": [90.0]}


def test_the_goals_writer_judges_the_figures_it_is_given():
    results = {
        "_clinics": {"10k": 5, "1m": 5, "chain50": 50},
        "bare floor": _entry(1000, 1),
        "10k clinic-7d": _entry(400, 4),  # 0.40 of the floor: met
        "10k practitioner-day": _entry(250, 5),  # 0.25: short by 2x
        "10k chain-7d-limit10": _entry(100, 10),
        "chain50 chain-7d-limit10": _entry(40, 30),  # 3x the cost: short by 1.5x
        "10k chain-7d-full": _entry(50, 20),
        "chain50 chain-7d-full": _entry(5, 200),  # (200 - 20) / 45 = 4 ms per clinic: met
    }
    for scenario in ("floor", *run.HISTORY_SCENARIOS):
        small = results.get(f"10k {scenario}", _entry(500, 2))
        results[f"10k {scenario}"] = small
        results[f"1m {scenario}"] = _entry(small["rps"] / (1.10 if scenario == "pooled-7d" else 1.0), 2)
    verdicts = {v["goal"].split(" (")[0].split(":")[0]: v for v in run.goals(results, None, None)}
    by_goal = {v["goal"]: v for v in run.goals(results, None, None)}
    assert verdicts["Clinic-wide 7 days / bare floor"]["met"] is True
    assert verdicts["One practitioner, one day / bare floor"]["by"] == "2.00x short"
    chain_limit = next(v for g, v in by_goal.items() if g.startswith("Chain-wide 7 days limit=10"))
    assert chain_limit["met"] is False and chain_limit["by"] == "1.50x short"
    per_clinic = next(v for g, v in by_goal.items() if g.startswith("Full chain-wide"))
    assert per_clinic["met"] is True and per_clinic["measured"].startswith("4.00 ms per clinic")
    history = {g: v for g, v in by_goal.items() if g.startswith("History")}
    assert len(history) == 1 + len(run.HISTORY_SCENARIOS)
    assert [g for g, v in history.items() if not v["met"]] == ["History: pooled-7d, 1M vs 10k (req/s 10k / req/s 1M)"]
    assert by_goal["Booking / floor"]["met"] is None  # not measured is not "met"


@pytest.mark.parametrize("zone", ["Europe/Amsterdam", "America/New_York", "Asia/Kolkata"])
def test_the_reference_starts_each_clinic_where_the_product_does_for_a_staff_key(zone):
    """The practitioners' preference counts their load from the window's start: the reference must
    start where the product's policy window does (the grid point after the notice), or a claim in
    between ranks them otherwise (pooled-7d and chain-7d-full differed so in one make bench run)."""
    from zoneinfo import ZoneInfo

    from bench import reference_app
    from booking.domain.policy import Actor
    from booking.services import availability_cache, availability_search

    actor = Actor(key_id="key", channel="staff")
    clinic = availability_cache.ClinicFacts("cln", "org", "C", zone, 0, None, None)
    treatment = availability_cache.TreatmentFacts(
        "tt", "org", "T", "microneedling", 30, 5, 45, 10, 15, None, None, None, None, None, None
    )
    catalog = availability_cache.Catalog((1, None), None, {}, {}, frozenset(), frozenset())
    query_start = datetime(2027, 3, 26, 6, 0, tzinfo=UTC)
    for seconds in range(0, 2 * 86400, 3607):  # across the spring change in Europe and off every grid point
        now = query_start + timedelta(seconds=seconds)
        query = availability_search.Query("tt", query_start, query_start + timedelta(days=7))
        product = availability_search._policy_bounds(
            catalog, actor, clinic, treatment, query, query.start, query.end, now, availability_search.Settings()
        )
        assert not isinstance(product, Exception)
        assert reference_app.clinic_start(query_start, now, ZoneInfo(zone)) == product[0], now
