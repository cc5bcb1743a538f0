"""One hostile tenant cannot stop another, through the real processes.

gunicorn (two workers) and `python -m schedulers` on one SQLite database, with
WEBHOOKS_ALLOW_PRIVATE=1 and short intervals. Organization A does what a hostile tenant
can: its webhook receiver answers 200 and trickles its body for ever, and its practitioner's
external calendar URL turns into a bomb (`RRULE:FREQ=SECONDLY`, no COUNT or UNTIL) once it
has been accepted, so the scheduler fetches and expands it on every refresh; A also uploads
that bomb and a trickling calendar URL through the API, one request after the other (one
client: a hostile tenant gets one web worker at a time, the other serves B).
Organization B meanwhile creates patients and books appointments over HTTP, and has a
normal receiver. B's writes must all succeed (no 5xx, never "database is locked") and
every one of B's webhooks must arrive; the latencies are printed.

The calendar half depends on the bounded expansion in booking/integrations/external_calendars.py
and on fetching outside transactions (api.db.end_transaction); the webhook half on
schedulers/delivery.py.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta

import pytest

from migrations import upgrade

from ..hostile import CalendarServer, HostileReceiver, Receiver
from .test_scheduler_process import Clinic, gunicorn, start_scheduler, wait_for  # noqa: F401 - a fixture

B_SECONDS = 15  # how long B keeps writing while A attacks
WRITE_BOUND = 8.0  # seconds any one of B's writes may take, on a busy two-core machine
DELIVERY_BOUND = 15.0  # seconds from B's booking to its webhook: generous, the test machine is shared (p50 is ~1 s)
REQUEST_TIMEOUT = 40  # past gunicorn's 30 s worker timeout: a request never hangs the test


def call(base: str, token: str, method: str, path: str, body=None) -> tuple[int, str, float]:
    """(status, body text, seconds taken); a timeout or a dropped connection is status 0."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{base}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
            return response.status, response.read().decode(), time.monotonic() - started
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace"), time.monotonic() - started
    except OSError as error:
        return 0, f"{type(error).__name__}: {error}", time.monotonic() - started


def created(base: str, token: str, path: str, body: dict) -> dict:
    status, text, _ = call(base, token, "POST", path, body)
    assert status == 201, (path, status, text)
    return json.loads(text)


def summary(seconds: list[float]) -> str:
    if not seconds:
        return "none"
    return f"p50 {statistics.median(seconds) * 1000:.0f} ms, max {max(seconds) * 1000:.0f} ms (n={len(seconds)})"


@pytest.fixture
def servers():
    made = {
        "hostile": HostileReceiver("slow-headers"),
        "fine": Receiver(),
        "calendar": CalendarServer(),
        "trickling_calendar": CalendarServer(),
    }
    made["trickling_calendar"].mode = "trickle"
    yield made
    for server in made.values():
        server.close()


def test_a_hostile_tenant_stops_neither_another_tenants_writes_nor_its_webhooks(
    tmp_path,
    monkeypatch,
    servers,
    start_scheduler,  # noqa: F811 - the imported fixture
):
    url = f"sqlite:///{tmp_path / 'hostile.sqlite3'}"
    upgrade(url)
    a, b = Clinic(url), Clinic(url)
    for name, value in {
        "WEBHOOKS_ALLOW_PRIVATE": "1",
        "WEBHOOK_INTERVAL_SECONDS": "0.5",
        "EXTERNAL_CALENDAR_REFRESH_SECONDS": "1",
    }.items():
        monkeypatch.setenv(name, value)  # read by both processes
    hostile, fine, calendar = servers["hostile"], servers["fine"], servers["calendar"]

    with gunicorn(url) as base:
        scheduler = start_scheduler(url, lease_seconds=5)
        created(base, a.token, "/v1/webhooks", {"url": hostile.url, "event_types": ["appointment.created"]})
        created(base, b.token, "/v1/webhooks", {"url": fine.url, "event_types": ["appointment.created"]})
        created(
            base,
            a.token,
            f"/v1/practitioners/{a.practitioners[0]}/external-calendars",
            {"name": "Also works at", "url": calendar.url},
        )  # accepted while benign
        calendar.mode = "bomb"  # from now on every refresh by the scheduler fetches the bomb
        starts = b.yesterday + timedelta(days=3)
        for i in range(3):  # A's events: deliveries its receiver holds
            patient = created(base, a.token, "/v1/patients", {"name": f"A{i}", "email": f"a{i}@example.com"})
            created(base, a.token, "/v1/appointments", {**slot(a, patient["id"], starts + timedelta(hours=i), i % 2)})

        def attack():
            for name, target in (("bomb", calendar.url), ("trickle", servers["trickling_calendar"].url)):
                call(
                    base,
                    a.token,
                    "POST",
                    f"/v1/practitioners/{a.practitioners[1]}/external-calendars",
                    {"name": name, "url": target},
                )

        attacker = threading.Thread(target=attack, daemon=True)
        attacker.start()

        writes, booked = [], {}  # B's (what, status, body, seconds); appointment id -> monotonic time of 201
        deadline = time.monotonic() + B_SECONDS
        i = 0
        while time.monotonic() < deadline:
            status, text, took = call(
                base, b.token, "POST", "/v1/patients", {"name": f"B{i}", "email": f"b{i}@example.com"}
            )
            writes.append(("patient", status, text, took))
            if status == 201:
                body = slot(b, json.loads(text)["id"], starts + timedelta(hours=i // 2), i % 2)
                status, text, took = call(base, b.token, "POST", "/v1/appointments", body)
                writes.append(("appointment", status, text, took))
                if status == 201:
                    booked[json.loads(text)["id"]] = time.monotonic()
            i += 1

        wait_for(
            lambda: booked.keys() <= fine.arrivals.keys(),
            timeout=DELIVERY_BOUND,
            every=0.1,
            what=f"B's webhooks ({len(booked.keys() - fine.arrivals.keys())} of {len(booked)} missing)",
        )
        stopping = time.monotonic()
        try:
            stopped = scheduler.stop(timeout=10)  # promptly, though A's sends are still held
        except subprocess.TimeoutExpired:
            stopped = "still running after 10 s (killed)"
        stopped_in = time.monotonic() - stopping
        scheduler_log = scheduler.log

    latencies = [fine.arrivals[appointment] - at for appointment, at in booked.items()]
    print(
        f"\nB's writes: {summary([w[3] for w in writes])}; B's webhooks: {summary(latencies)}; "
        f"A's receiver held {hostile.most_at_once} at once; calendar fetched {calendar.fetches} times; "
        f"scheduler stopped in {stopped_in:.1f} s"
    )
    print("scheduler log (last lines):\n" + "\n".join(scheduler_log.splitlines()[-15:]))
    failed = [(what, status, text[:200]) for what, status, text, _ in writes if status != 201]
    assert not failed, failed  # above all no 5xx and no "database is locked"
    assert not any("database is locked" in text for _, _, text, _ in writes)
    assert "database is locked" not in scheduler_log
    assert len(booked) >= 5, "B booked too little to show anything"
    assert max(w[3] for w in writes) < WRITE_BOUND, summary([w[3] for w in writes])
    assert max(latencies) < DELIVERY_BOUND, summary(latencies)
    assert 1 <= hostile.most_at_once <= 2  # A's receiver held its own sends, never more than its cap
    assert calendar.fetches >= 2  # the scheduler did fetch the bomb, not only the upload
    assert stopped == 0, stopped


def slot(clinic: Clinic, patient: str, starts_at, which: int) -> dict:
    return {
        "clinic_id": clinic.clinic,
        "practitioner_id": clinic.practitioners[which],
        "room_id": clinic.rooms[which],
        "treatment_type_id": clinic.consultation,
        "patient_id": patient,
        "starts_at": starts_at.isoformat(),
    }
