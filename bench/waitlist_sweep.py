"""The waitlist sweep's cost beside a noisy neighbour: searches and seconds per sweep.

    .venv/bin/python -m bench.waitlist_sweep                 # PostgreSQL (the local server)
    .venv/bin/python -m bench.waitlist_sweep --sqlite --entries 100 --sweeps 4

On a fresh database, organization A has `--entries` waitlist entries for a start that stays booked
(they fit nothing) and organization B one entry for a start that is booked and then cancelled. Then
`--sweeps` runs of the scheduler's job `offer_waitlist` (its default settings), one after the
other, each timed, with the availability searches it made counted per organization. The clinics
are the tests' world (tests/booking_world.py) on the real clock; the start is Wednesday 6 January
2027, 10:00 London, inside the 90-day horizon from 8 October 2026 until the notice before it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests import scaffold

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
DAY, HOUR = 2, 10  # Wednesday 6 January 2027, 10:00 London


def run(url: str, entries: int, sweeps: int) -> list[tuple[float, int, Counter]]:
    from api import create_app
    from booking.services import availability_search
    from booking.services.history import record_past_session
    from models import WaitlistEntry
    from schedulers import jobs
    from schedulers.config import SchedulerSettings
    from tests.booking_world import Clock, build_world
    from tests.helpers import make_organization

    def patient(world) -> dict:
        """A patient of `world` with a consultation ten days ago (the world's own is dated for its tests)."""
        made = world.new_patient(name="Pat", email=f"pat{time.perf_counter_ns()}@example.com")
        with app.extensions["db_write_sessions"]() as db:
            ago = datetime.now(UTC) - timedelta(days=10)
            record_past_session(
                db,
                world.caller.organization_id,
                made["id"],
                treatment_type_id=world.consultation["id"],
                performed_at=ago,
            )
            db.commit()
        return made

    app = create_app({"DATABASE_URL": url, "RATE_LIMIT_ENABLED": False})
    client = app.test_client()
    clock = Clock(datetime.now(UTC))
    crowded = build_world(make_organization(app, client, "Crowded Skin"), clock)
    quiet = build_world(make_organization(app, client, "Quiet Skin"), clock)
    crowded.book(patient_id=patient(crowded)["id"], starts_at=crowded.at(DAY, HOUR))
    who = patient(crowded)
    start, end = (datetime.fromisoformat(crowded.at(DAY, HOUR, m)) for m in (0, 15))
    with app.extensions["db_write_sessions"]() as db:
        db.add_all(
            WaitlistEntry(
                organization_id=crowded.caller.organization_id,
                patient_id=who["id"],
                treatment_type_id=crowded.microneedling["id"],
                clinic_ids=[crowded.clinic["id"]],
                window_starts_at=start,
                window_ends_at=end,
                weekdays=[],
                timezone="Europe/London",
                status="waiting",
                created_at=datetime.now(UTC) + timedelta(microseconds=n),
            )
            for n in range(entries)
        )
        db.commit()
    booked = quiet.book(patient_id=patient(quiet)["id"], starts_at=quiet.at(DAY, HOUR))
    body = {
        "patient_id": patient(quiet)["id"],
        "treatment_type_id": quiet.microneedling["id"],
        "clinic_ids": [quiet.clinic["id"]],
        "start": quiet.at(DAY, HOUR),
        "end": quiet.at(DAY, HOUR, 15),
    }
    assert quiet.caller.post("/v1/waitlist", json=body).status_code == 201
    cancelled = quiet.caller.post(f"/v1/appointments/{booked['id']}/cancel", json={"reason": "patient_unwell"})
    assert cancelled.status_code == 200

    counted: Counter[str] = Counter()
    real = availability_search.search

    def counting(db, org, *args, **kwargs):
        counted[org] += 1
        return real(db, org, *args, **kwargs)

    availability_search.search = counting
    jobs.register("bench-waitlist", SchedulerSettings(database_url=url))
    names = {crowded.caller.organization_id: "A", quiet.caller.organization_id: "B"}
    rows = []
    try:
        for _ in range(sweeps):
            counted.clear()
            jobs.keep_lease("bench-waitlist")
            began = time.perf_counter()
            made = jobs.offer_waitlist("bench-waitlist")
            rows.append((time.perf_counter() - began, made, Counter({names[o]: n for o, n in counted.items()})))
    finally:
        availability_search.search = real
        jobs.unregister("bench-waitlist")
        app.extensions["db_engine"].dispose()
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.waitlist_sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--entries", type=int, default=300)
    parser.add_argument("--sweeps", type=int, default=8)
    parser.add_argument("--admin-url", default=DEFAULT_POSTGRES)
    args = parser.parse_args(argv)
    backend = "sqlite" if args.sqlite else "postgresql"
    with (
        tempfile.TemporaryDirectory() as folder,
        scaffold.fresh_database(backend, args.admin_url, Path(folder), "needlebook_waitlist_sweep") as url,
    ):
        rows = run(url, args.entries, args.sweeps)
    print(f"{backend}: A {args.entries} entries that fit nothing, B one entry for a slot just freed")
    print("| sweep | seconds | offers | searches A | searches B |")
    print("|---|---|---|---|---|")
    for i, (seconds, made, searches) in enumerate(rows, 1):
        print(f"| {i} | {seconds:.2f} | {made} | {searches['A']} | {searches['B']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
