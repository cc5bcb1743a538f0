"""Booking throughput on PostgreSQL: real bookings, 16 clients, against the floor.

    .venv/bin/python -m bench.booking                 # 20 s per scenario in 4 alternating rounds
    .venv/bin/python -m bench.booking --duration 40

A fresh database (bench/load.py's `fresh_database` and `seed`: 3 clinics in three zones, 3
practitioners and 3 needling rooms each, open 08:00-20:00 every day) with --patients patients,
each with a consultation two weeks ago and a course, so that every booking passes the rules and
no patient books twice (the 28-day interval rule is never what decides).

The workload is a list of slots that cannot collide: the app's own availability search, clinic by
clinic and day by day, then a greedy pick that keeps a slot only when neither its practitioner nor
its room has an accepted slot overlapping it (with a 15-minute margin). Each slot gets its own
patient. wrk (bench/booking.lua) POSTs them to /v1/appointments in order over 16 connections, one
thread, one shared cursor, so every request is a distinct slot; the cursor carries over between
rounds. Only 201s count towards throughput; the script counts every status.

The floor (GET /bench/floor) runs on the same server with the same wrk settings, in rounds that
alternate with the booking rounds; CPU per request comes from /proc, as in bench/run.py.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import urllib.parse
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bench import load as loadlib
from bench.run import OUT, ROOT, MemorySampler, Server, cpu_seconds, log, parse_wrk

TARGET_RATIO = 0.20  # booking at least 20% of the floor's requests per second (issue 15)
LUA = ROOT / "bench" / "booking.lua"
MARGIN = timedelta(minutes=15)


def collision_free_slots(api, world, days: int, first_day: int) -> list[dict]:
    """Microneedling slots no two of which share a practitioner or a room at overlapping times."""
    chosen = []
    for clinic in world.clinics:
        zone = ZoneInfo(clinic["zone"])
        for offset in range(first_day, first_day + days):
            day = datetime.now(zone).date() + timedelta(days=offset)
            start = datetime(day.year, day.month, day.day, tzinfo=zone)
            query = {
                "clinic_id": clinic["id"],
                "treatment_type_id": world.types["microneedling"],
                "start": start.isoformat(),
                "end": (start + timedelta(days=1)).isoformat(),
                "limit": 500,
            }
            slots = api.call("GET", "/v1/availability?" + urllib.parse.urlencode(query), status=200)["data"]
            busy_until: dict[str, datetime] = {}
            for slot in sorted(slots, key=lambda s: s["starts_at"]):
                begins, ends = (datetime.fromisoformat(slot[k]) for k in ("starts_at", "ends_at"))
                resources = (slot["practitioner_id"], slot["room_id"])
                if all(busy_until.get(r, begins) <= begins for r in resources):
                    chosen.append(slot)
                    for r in resources:
                        busy_until[r] = ends + MARGIN
    return chosen


def prepare(url: str, patients: int, days: int, first_day: int) -> tuple[loadlib.World, list[dict]]:
    with loadlib.Receiver() as receiver:  # seed() subscribes a webhook; no scheduler delivers during the run
        world = loadlib.seed(url, receiver)
    options = loadlib.Options(patients=patients, past_sessions=0)
    loadlib.seed_patients(url, world, options)
    api = loadlib._Api(url)
    api.token = world.token
    try:
        slots = collision_free_slots(api, world, days, first_day)
    finally:
        api.close()
    bodies = [{**slot, "patient_id": patient} for slot, patient in zip(slots, world.patients, strict=False)]
    return world, bodies


def wrk_round(url: str, seconds: int, connections: int, headers: dict, script_args: list[str] | None) -> str:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if script_args is not None:
        command += ["-s", str(LUA), url, "--", *script_args]
    else:
        command.append(url)
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def measure(
    server: Server, url: str, seconds: int, connections: int, headers: dict, script_args: list[str] | None = None
) -> dict:
    pids, backends = server.workers(), server.backends()
    sampler = MemorySampler(pids)
    app_cpu, db_cpu = cpu_seconds(pids), cpu_seconds(backends)
    sampler.start()
    output = wrk_round(url, seconds, connections, headers, script_args)
    peak = sampler.stop()
    result = parse_wrk(output)
    result.update(
        app_cpu=cpu_seconds(pids) - app_cpu,
        db_cpu=cpu_seconds(backends) - db_cpu,
        peak_rss_kb=max(peak.values()),
        loadavg=os.getloadavg()[0],
    )
    result["statuses"] = {code: int(n) for code, n in re.findall(r"^status (\d+) (\d+)$", output, re.M)}
    cursor = re.search(r"^next (\d+)$", output, re.M)
    result["next"] = int(cursor.group(1)) if cursor else None
    return result


def summarize(rounds: list[dict], counted: str | None = None) -> dict:
    seconds = sum(r["seconds"] for r in rounds)
    requests = sum(r["requests"] for r in rounds)
    statuses: Counter = Counter()
    for r in rounds:
        statuses.update(r["statuses"])
    good = statuses.get(counted, 0) if counted else requests - sum(r["non_2xx"] for r in rounds)

    def weighted(key: str) -> float:
        return sum(r[key] * r["requests"] for r in rounds) / max(requests, 1)

    return {
        "requests": requests,
        "seconds": round(seconds, 2),
        "counted": good,
        "rps": good / seconds,
        "round_rps": [round(r["rps"], 1) for r in rounds],
        "statuses": dict(statuses),
        "non_2xx": sum(r["non_2xx"] for r in rounds),
        **{key: round(weighted(key), 2) for key in ("p50_ms", "p90_ms", "p99_ms")},
        "app_cpu_ms_per_request": sum(r["app_cpu"] for r in rounds) / max(requests, 1) * 1000,
        "db_cpu_ms_per_request": sum(r["db_cpu"] for r in rounds) / max(requests, 1) * 1000,
        "peak_rss_mb": round(max(r["peak_rss_kb"] for r in rounds) / 1024, 1),
    }


def run(args) -> dict:
    """Both scenarios on one fresh database; returns the figures (also bench/out/booking.json)."""
    os.environ.setdefault("RATE_LIMIT", "100000000 per minute")  # the limiter runs, no bench reaches it
    OUT.mkdir(exist_ok=True)
    options = loadlib.Options(
        admin_url=args.admin_url, keep=args.keep, db_prefix=os.environ.get("BENCH_DB_PREFIX", "needlebook_") + "booking"
    )
    with loadlib.fresh_database(options) as url:
        log(f"booking: seeding {url.rsplit('/', 1)[1]} ({args.patients} patients) and picking slots")
        world, bodies = prepare(url, args.patients, args.days, args.first_day)
        log(f"booking: {len(bodies)} collision-free slots for {len(world.patients)} patients")
        slot_file = OUT / "booking-slots.jsonl"
        slot_file.write_text("".join(json.dumps(b) + "\n" for b in bodies))
        headers = {"Authorization": f"Bearer {world.token}", "Content-Type": "application/json"}
        per_round = max(1, args.duration // args.rounds)
        with Server(url.replace("+psycopg", ""), args.port) as server:  # psycopg wants a plain libpq url
            base = f"http://127.0.0.1:{args.port}"
            cursor = 0
            # Warm-up: the floor, and bookings from the same list (they count for nothing).
            wrk_round(f"{base}/bench/floor", args.warmup, args.connections, {}, None)
            warm = measure(
                server, f"{base}/v1/appointments", args.warmup, args.connections, headers, [str(slot_file), str(cursor)]
            )
            cursor = warm["next"] + args.connections
            rounds: dict[str, list] = {"floor": [], "booking": []}
            for number in range(args.rounds):
                for name in ("floor", "booking") if number % 2 == 0 else ("booking", "floor"):
                    if name == "floor":
                        result = measure(server, f"{base}/bench/floor", per_round, args.connections, {})
                    else:
                        result = measure(
                            server,
                            f"{base}/v1/appointments",
                            per_round,
                            args.connections,
                            headers,
                            [str(slot_file), str(cursor)],
                        )
                        # Requests still in flight when wrk stopped may have booked: skip past them.
                        cursor = result["next"] + args.connections
                        if cursor >= len(bodies):
                            raise RuntimeError(f"ran out of slots ({len(bodies)}): raise --days or --patients")
                    result.setdefault("statuses", {})
                    rounds[name].append(result)
        import sqlalchemy as sa

        from models import make_engine

        engine = make_engine(url)
        with engine.connect() as conn:
            in_db = conn.scalar(sa.text("SELECT count(*) FROM appointments WHERE status = 'booked'"))
        engine.dispose()
    floor = summarize(rounds["floor"])
    booking = summarize(rounds["booking"], counted="201")
    booking["warmup_201"] = warm["statuses"].get("201", 0)
    figures = {
        "started": args.started,
        "connections": args.connections,
        "duration": args.duration,
        "rounds": args.rounds,
        "slots": len(bodies),
        "patients": len(world.patients),
        "appointments_in_db": in_db,
        "floor": floor,
        "booking": booking,
        "ratio": booking["rps"] / floor["rps"],
        "ratio_cpu": (
            (floor["app_cpu_ms_per_request"] + floor["db_cpu_ms_per_request"])
            / (booking["app_cpu_ms_per_request"] + booking["db_cpu_ms_per_request"])
        ),
        "target": TARGET_RATIO,
    }
    (OUT / "booking.json").write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def table(f: dict) -> str:
    rows = []
    for name in ("floor", "booking"):
        r = f[name]
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(r["statuses"].items())) or f"non-2xx: {r['non_2xx']}"
        rows.append(
            f"| {name} | {r['rps']:.1f} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['app_cpu_ms_per_request']:.2f} | {r['db_cpu_ms_per_request']:.2f} | {r['requests']} | "
            f"{statuses} |"
        )
    met = f["ratio"] >= f["target"]
    how = f"{f['ratio'] / f['target']:.1f}x the target" if met else f"{f['target'] / f['ratio']:.1f}x short"
    return (
        "\n".join(
            [
                "| scenario | req/s (201s for booking) | p50 ms | p90 ms | p99 ms | worker CPU ms/req | "
                "PostgreSQL CPU ms/req | requests | statuses |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---|",
                *rows,
                "",
                "| target | measured | met |",
                "|---|---|---|",
                f"| booking/floor >= {f['target']:.2f} (req/s, 201s only) | {f['ratio']:.3f} | "
                f"{'yes' if met else '**no**'} ({how}) |",
                f"| booking/floor by CPU per request (worker + PostgreSQL), estimate | {f['ratio_cpu']:.3f} | |",
                "",
                f"{f['slots']} collision-free slots prepared, {f['patients']} patients; "
                f"{f['booking']['warmup_201']} bookings in the warm-up; {f['appointments_in_db']} booked appointments "
                f"in the database afterwards (warm-up + rounds + requests in flight when wrk stopped).",
            ]
        )
        + "\n"
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Booking throughput against the floor.")
    p.add_argument("--duration", type=int, default=20, help="seconds per scenario, split into --rounds")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--patients", type=int, default=6000)
    p.add_argument("--days", type=int, default=75, help="days of slots to prepare")
    p.add_argument("--first-day", type=int, default=2, help="the first of them, days from today")
    p.add_argument("--port", type=int, default=8775)
    p.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--keep", action="store_true", help="keep the database")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    args.started = datetime.now(UTC).isoformat(timespec="seconds")
    figures = run(args)
    text = table(figures)
    (OUT / "booking.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
