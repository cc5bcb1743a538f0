"""Our availability against a peer's, for one practitioner and one day.

    .venv/bin/python -m bench.peer               # 20 s per side in 4 alternating rounds, wrk -c4
    .venv/bin/python -m bench.peer --connections 16

The peer is django-appointment from PyPI, installed into bench/out/peer-venv (made on the first
run) and served by gunicorn with 2 sync workers from a minimal Django project that this script
writes into bench/out/peer-project (bench/peer_site.py), on PostgreSQL (database needlebook_peer,
recreated each run).

The problem is taken from the bench 10k database (bench/run.py `ensure_data`): the measured
clinic's practitioner and day (2-8 days ahead) for which our availability finds the most
starts, their shift that day and their claims that day (appointments and live holds). The peer gets
one staff member with those working hours and one appointment per claim, and one service as long as a microneedling
visit (arrival to departure), on a 15-minute grid like ours.

  ours  GET /v1/availability?clinic_id&treatment_type_id=<microneedling>&practitioner_id
        &start=<day 00:00 local>&end=<day 24:00 local>&limit=500
  peer  GET /appointment/ajax/available_slots/?selected_date&staff_member&service_id
        (get_available_slots_ajax; X-Requested-With: XMLHttpRequest, as its decorator requires)

Both servers run at once; wrk loads each with the same settings in rounds that alternate
between them, and CPU per request comes from /proc as in bench/run.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from bench import peer_site
from bench.run import OUT, Server, aggregate, ensure_data, log, measure_round, wrk
from tests.scaffold import create_database, gunicorn_command, start

PEER_VENV = OUT / "peer-venv"
PEER_PROJECT = OUT / "peer-project"
PEER_DB = os.environ.get("BENCH_DB_PREFIX", "needlebook_") + "peer"
PEER_PACKAGES = ["django-appointment", "gunicorn", "psycopg[binary]"]
STEP_MINUTES = 15
AJAX = {"X-Requested-With": "XMLHttpRequest"}


# ---------------------------------------------------------------------------- the problem


def pick_problem(meta: dict) -> dict:
    """The measured clinic's practitioner and day (2-8 days ahead, one shift there, some claims) for
    which our availability finds the most starts: the data is 60% booked, and on most days a
    70-minute visit with a free room fits nowhere, which would leave both sides nothing to find."""
    from api import create_app
    from models import make_engine

    engine = make_engine(meta["url"])
    clinic, treatment = meta["measured_clinic_id"], meta["treatment_type_ids"]["microneedling"]
    app = create_app({"DATABASE_URL": meta["url"], "RATE_LIMIT_ENABLED": False})
    client, auth = app.test_client(), {"Authorization": f"Bearer {meta['api_key']}"}
    best = None
    with engine.connect() as conn:
        zone = ZoneInfo(conn.scalar(sa.text("SELECT timezone FROM clinics WHERE id = :c"), {"c": clinic}))
        visit = conn.scalar(
            sa.text(
                "SELECT min(extract(epoch FROM ends_at - starts_at)) / 60 FROM appointments "
                "WHERE treatment_type_id = :t"
            ),
            {"t": treatment},
        )
        today = datetime.now(zone).date()
        for offset in range(2, 9):
            day = today + timedelta(days=offset)
            start = datetime(day.year, day.month, day.day, tzinfo=zone)
            end = start + timedelta(days=1)
            shifts = conn.execute(
                sa.text(
                    "SELECT w.practitioner_id, min(w.start_minute), max(w.end_minute) FROM working_hours w "
                    "JOIN practitioner_treatment_types p ON p.practitioner_id = w.practitioner_id "
                    "AND p.treatment_type_id = :t WHERE w.clinic_id = :c AND w.weekday = :wd "
                    "GROUP BY w.practitioner_id HAVING count(*) = 1"
                ),
                {"c": clinic, "t": treatment, "wd": day.weekday()},
            ).all()
            for practitioner, first, last in shifts:
                off = conn.scalar(
                    sa.text(
                        "SELECT count(*) FROM time_off WHERE practitioner_id = :p AND starts_at < :e AND ends_at > :s"
                    ),
                    {"p": practitioner, "s": start, "e": end},
                )
                if off:
                    continue
                claims = conn.execute(
                    sa.text(
                        "SELECT starts_at, ends_at FROM claims WHERE resource = :r AND starts_at < :e AND ends_at > :s "
                        "AND (expires_at IS NULL OR expires_at > now()) ORDER BY starts_at"
                    ),
                    {"r": f"practitioner:{practitioner}", "s": start, "e": end},
                ).all()
                if len(claims) < 4:
                    continue
                query = {
                    "clinic_id": clinic,
                    "treatment_type_id": treatment,
                    "practitioner_id": practitioner,
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "limit": 500,
                }
                found = client.get("/v1/availability?" + urllib.parse.urlencode(query), headers=auth).get_json()
                starts = len({slot["starts_at"] for slot in found["data"]})
                if best is None or (starts, len(claims)) > (best["our_starts"], len(best["claims"])):
                    best = {
                        "practitioner_id": practitioner,
                        "date": day.isoformat(),
                        "zone": str(zone),
                        "start": f"{first // 60:02d}:{first % 60:02d}",
                        "end": f"{last // 60:02d}:{last % 60:02d}",
                        "claims": [
                            (s.astimezone(zone).strftime("%H:%M"), e.astimezone(zone).strftime("%H:%M"))
                            for s, e in claims
                        ],
                        "busy_seconds": sum((e - s).total_seconds() for s, e in claims),
                        "our_starts": starts,
                        "day_start": start.isoformat(),
                        "day_end": end.isoformat(),
                    }
    app.extensions["db_engine"].dispose()
    engine.dispose()
    best["service_minutes"] = int(visit)
    return best


# ---------------------------------------------------------------------------- the peer


def ensure_peer_venv() -> Path:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        log("peer: creating bench/out/peer-venv and installing django-appointment from PyPI")
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PEER_PACKAGES], check=True)
    return python


def peer_version(python: Path) -> str:
    return subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m, django; print(m.version('django-appointment'), django.get_version())",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def build_peer(python: Path, problem: dict, admin_url: str) -> dict:
    """A fresh database and project for the peer, migrated and seeded with the problem."""
    create_database(admin_url, PEER_DB)
    site = PEER_PROJECT / "peer_site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "__init__.py").write_text("")
    (site / "settings.py").write_text(
        peer_site.SETTINGS.replace("__DATABASE__", PEER_DB)
        .replace("__ZONE__", problem["zone"])
        .replace("__STEP__", str(STEP_MINUTES))
    )
    (site / "urls.py").write_text(peer_site.URLS)
    (site / "wsgi.py").write_text(peer_site.WSGI)
    (PEER_PROJECT / "seed.py").write_text(peer_site.SEED)
    spec = {
        "date": problem["date"],
        "start": problem["start"],
        "end": problem["end"],
        "step": STEP_MINUTES,
        "service_minutes": problem["service_minutes"],
        "appointments": problem["claims"],
    }
    (PEER_PROJECT / "spec.json").write_text(json.dumps(spec, indent=2))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "peer_site.settings"}
    for package in (PEER_PROJECT / "peer_migrations", PEER_PROJECT / "peer_migrations" / "appointment"):
        package.mkdir(exist_ok=True)
        (package / "__init__.py").touch()
    for command in (["makemigrations", "appointment"], ["migrate"]):
        subprocess.run(
            [str(python), "-m", "django", *command, "--verbosity", "0"], cwd=PEER_PROJECT, env=env, check=True
        )
    seeded = subprocess.run(
        [str(python), "seed.py", "spec.json"], cwd=PEER_PROJECT, env=env, check=True, capture_output=True, text=True
    ).stdout
    return json.loads(seeded.strip().splitlines()[-1])


class PeerServer(Server):
    """gunicorn with 2 sync workers serving the peer project; Server's workers/backends/stop apply."""

    def __init__(self, python: Path, port: int, probe: str):
        super().__init__(f"postgresql://postgres@127.0.0.1:5432/{PEER_DB}", port)
        self.python, self.probe = python, probe

    def __enter__(self):
        self.process = start(
            gunicorn_command(
                self.port, app="peer_site.wsgi:application", python=self.python, options=("--log-level", "warning")
            ),
            cwd=PEER_PROJECT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if fetch(self.probe, AJAX)[0] == 200 and len(self.workers()) == 2:
                    return self
            except OSError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError("the peer's gunicorn exited during startup")
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise RuntimeError("the peer did not answer within 60 s")


def fetch(url: str, headers: dict) -> tuple[int, dict]:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
        return response.status, json.loads(response.read())


# ---------------------------------------------------------------------------- the run


def compare(ours: dict, theirs: dict, zone: ZoneInfo) -> dict:
    our_starts = sorted(datetime.fromisoformat(s["starts_at"]).astimezone(zone).strftime("%H:%M") for s in ours["data"])
    our_starts = sorted(set(our_starts))  # one per start: ours lists a start once per free room
    their_starts = sorted(datetime.fromisoformat(s[0]).strftime("%H:%M") for s in theirs["available_slots"])
    return {
        "ours": len(our_starts),
        "ours_rows": len(ours["data"]),
        "peer": len(their_starts),
        "both": len(set(our_starts) & set(their_starts)),
        "only_ours": sorted(set(our_starts) - set(their_starts)),
        "only_peer": sorted(set(their_starts) - set(our_starts)),
        "ours_starts": our_starts,
        "peer_starts": their_starts,
    }


def run(args, meta: dict | None = None) -> dict:
    """meta: the bench database to take the problem from (bench/run.py passes its 10k one)."""
    os.environ.setdefault("RATE_LIMIT", "100000000 per minute")  # the limiter runs, no bench reaches it
    OUT.mkdir(exist_ok=True)
    python = ensure_peer_venv()
    if meta is None:
        meta = ensure_data("10k", fresh=False, admin_url=args.admin_url)
    problem = pick_problem(meta)
    log(
        f"peer: practitioner {problem['practitioner_id']} on {problem['date']} {problem['start']}-{problem['end']} "
        f"({problem['zone']}), {len(problem['claims'])} claims, visit {problem['service_minutes']} min"
    )
    seeded = build_peer(python, problem, args.admin_url)
    ours_query = {
        "clinic_id": meta["measured_clinic_id"],
        "treatment_type_id": meta["treatment_type_ids"]["microneedling"],
        "practitioner_id": problem["practitioner_id"],
        "start": problem["day_start"],
        "end": problem["day_end"],
        "limit": 500,
    }
    urls = {
        "ours": f"http://127.0.0.1:{args.port}/v1/availability?{urllib.parse.urlencode(ours_query)}",
        "peer": f"http://127.0.0.1:{args.port + 1}/appointment/ajax/available_slots/?"
        + urllib.parse.urlencode(
            {
                "selected_date": problem["date"],
                "staff_member": seeded["staff_member"],
                "service_id": seeded["service_id"],
            }
        ),
    }
    headers = {"ours": {"Authorization": f"Bearer {meta['api_key']}"}, "peer": AJAX}
    sides = ("ours", "peer")
    per_round = max(1, args.duration // args.rounds)
    with Server(meta["url"], args.port) as ours, PeerServer(python, args.port + 1, urls["peer"]) as peer:
        servers = {"ours": ours, "peer": peer}
        probes = {side: fetch(urls[side], headers[side]) for side in sides}
        answers = compare(probes["ours"][1], probes["peer"][1], ZoneInfo(problem["zone"]))
        if not (answers["ours"] and answers["peer"]):
            raise RuntimeError(f"a side found no slots: {answers}")
        for side in sides:
            wrk(
                urls[side],
                duration=args.warmup,
                connections=args.connections,
                threads=args.threads,
                headers=headers[side],
            )
        rounds: dict[str, list] = {side: [] for side in sides}
        for number in range(args.rounds):
            for side in sides if number % 2 == 0 else sides[::-1]:
                rounds[side].append(measure_round(servers[side], urls[side], per_round, args, headers[side]))
    results = {side: aggregate(side, {"rows": answers[side], "bytes": 0}, rounds[side]) for side in sides}
    cpu = {side: results[side]["app_cpu_ms_per_request"] + results[side]["db_cpu_ms_per_request"] for side in sides}
    figures = {
        "started": args.started,
        "connections": args.connections,
        "threads": args.threads,
        "duration": args.duration,
        "rounds": args.rounds,
        "peer_version": peer_version(python),
        "problem": problem,
        "answers": answers,
        "results": results,
        "ratio_rps": results["ours"]["rps"] / results["peer"]["rps"],
        "ratio_cpu": cpu["peer"] / cpu["ours"],
    }
    (OUT / "peer.json").write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def table(f: dict) -> str:
    p, a = f["problem"], f["answers"]
    rows = []
    for side in ("ours", "peer"):
        r = f["results"][side]
        rows.append(
            f"| {side} | {r['rps']:.1f} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['app_cpu_ms_per_request']:.2f} | {r['db_cpu_ms_per_request']:.2f} | {r['requests']} | "
            f"{r['non_2xx']} |"
        )
    return (
        "\n".join(
            [
                "| side | req/s | p50 ms | p90 ms | p99 ms | worker CPU ms/req | PostgreSQL CPU ms/req "
                "| requests | non-2xx |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
                *rows,
                "",
                f"- ours / peer, req/s: **{f['ratio_rps']:.2f}**; by CPU per request (worker + PostgreSQL), "
                f"estimate: {f['ratio_cpu']:.2f}.",
                f"- Peer: django-appointment {f['peer_version'].replace(' ', ', Django ')}, PostgreSQL.",
                f"- Problem: one practitioner, {p['date']} ({p['zone']}), shift {p['start']}-{p['end']}, "
                f"{len(p['claims'])} claims ({p['busy_seconds'] / 60:.0f} min busy), "
                f"a {p['service_minutes']}-minute visit, 15-minute grid.",
                f"- Answers: ours {a['ours']} distinct starts ({a['ours_rows']} rows), peer {a['peer']}; "
                f"{a['both']} in both; only ours {', '.join(a['only_ours']) or 'none'}; only the peer "
                f"{', '.join(a['only_peer']) or 'none'}.",
            ]
        )
        + "\n"
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Our availability against django-appointment's.")
    p.add_argument("--duration", type=int, default=20, help="seconds per side, split into --rounds")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--port", type=int, default=8785)
    p.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    args.started = datetime.now(UTC).isoformat(timespec="seconds")
    text = table(run(args))
    (OUT / "peer-table.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
