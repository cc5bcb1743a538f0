"""CPU per availability request, in process (the app's worker side only, not PostgreSQL's).

One clinic (10 practitioners Mon-Sat 09:00-17:00, 8 rooms, open 08:00-18:00) with about one
claim per practitioner-hour over three weeks, in a scratch PostgreSQL database; then N requests
each of clinic-wide 7 days and one practitioner-day through the Flask test client, timed with
time.process_time(). Usage: .venv/bin/python bench/measure_availability.py [postgresql-url] [N]
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

sys.path.insert(0, ".")

from api import create_app
from booking.domain import clock
from booking.services.tenancy import issue_api_key
from models import make_engine, make_sessionmaker
from tests.scaffold import scratch_database
from tests.services.test_availability_fast_path import build

url = sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/postgres"
n = int(sys.argv[2]) if len(sys.argv) > 2 else 300
clock.now = lambda: datetime(2026, 12, 1, tzinfo=UTC)  # type: ignore[assignment]
week = [(d, 9 * 60, 17 * 60) for d in range(6)]
data = {
    "clinics": [
        {"zone": "Europe/London", "seats": 0, "devices": None, "rooms": [["needling"]] * 8,
         "practitioners": [{"qualified": True, "shifts": week}] * 10,
         "opening": [(d, 8 * 60, 18 * 60) for d in range(6)], "closures": []},
    ],
    "kind": "microneedling", "week": datetime(2027, 1, 4).date(), "time_off": [(0, 40, 8)],
    # about 1,400 claims over three weeks on practitioners and rooms (resources 0-7 rooms, 8-17 practitioners)
    "claims": [(i * 7, -7 * 96 + (i * 37) % (21 * 96), 4) for i in range(3000)],
}  # fmt: skip
with scratch_database(url, "hc_measure") as fresh:
    engine = make_engine(fresh)
    with make_sessionmaker(engine)() as db:
        built = build(db, data)
        _, token = issue_api_key(db, built["org"], "measure", ["read"])
        db.commit()
    engine.dispose()
    app = create_app({"DATABASE_URL": fresh, "RATE_LIMIT_ENABLED": False})
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    start = built["origin"]
    queries = {
        "clinic-wide 7 days": f"clinic_id={built['clinics'][0]}&end={(start + timedelta(days=7)).isoformat()}",
        "one practitioner-day": f"clinic_id={built['clinics'][0]}&practitioner_id={built['practitioners'][0]}"
        f"&end={(start + timedelta(days=1)).isoformat()}&limit=500",
    }
    for name, rest in queries.items():
        path = f"/v1/availability?treatment_type_id={built['treatment']}&start={start.isoformat()}&{rest}"
        path = path.replace("+", "%2B")
        first = client.get(path, headers=headers)
        assert first.status_code == 200, first.get_data(as_text=True)
        for _ in range(20):
            client.get(path, headers=headers)
        began = time.process_time()
        for _ in range(n):
            client.get(path, headers=headers)
        spent = (time.process_time() - began) / n * 1000
        statements: list[str] = []

        def count(_conn, _cursor, statement, *_rest, seen=statements):
            seen.append(statement)

        sa.event.listen(app.extensions["db_engine"], "before_cursor_execute", count)
        client.get(path, headers=headers)
        sa.event.remove(app.extensions["db_engine"], "before_cursor_execute", count)
        slots = len(first.get_json()["data"])
        print(f"{name}: {spent:.2f} ms CPU per request ({slots} slots, {len(statements)} statements)")
    app.extensions["db_engine"].dispose()
