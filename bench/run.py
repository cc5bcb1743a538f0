"""Run the availability benchmark end to end (`make bench`, `make bench-quick`).

    .venv/bin/python -m bench.run                  # as `make bench`
    .venv/bin/python -m bench.run --quick          # as `make bench-quick`: small data, short rounds
    .venv/bin/python -m bench.run --fresh          # regenerate the databases even if recent ones exist
    .venv/bin/python -m bench.run --duration 4 --rounds 2 --warmup 1 --no-peer   # a short full run

The data (bench/make_data.py; kept when generated in the last 12 hours by the current generator):
the 5-clinic chain at 10k and at 1M past appointments, and a 50-clinic chain at 10k
(--quick: 2k, 40k and 2k, generated every time). Six servers run at once, each gunicorn with
2 sync workers: the product (bench.floor_app:app) on each database, the bare floor
(bench/bare_app.py) and the reference (bench/reference_app.py) on the 10k and the 50-clinic ones.

The entries, all in one rotation: every round runs each entry for --duration/--rounds seconds,
in alternating order from round to round, compared entries side by side, so that a change in the
machine's background load falls on both sides of every comparison alike and every ratio comes from
the same run:

  bare floor         GET /bench/bare-floor: flask-smorest outside the app, 10 rows from PostgreSQL
  <data> floor       GET /bench/floor: the same 10 rows through the production app (in-app floor)
  clinic-7d          the measured clinic, microneedling, the next 7 days, limit=500
  clinic-7d-limit50  the same with the default limit
  practitioner-day   one practitioner of the measured clinic, one day (the one with most free starts)
  pooled-7d          the clinic with a numbing area and counted devices, 7 days, limit=500
  chain-7d-limit10   no clinic_id (the whole chain), 7 days, limit=10 (5 clinics; chain50: 50)
  chain-7d-full      the same with limit=500
  ref ...            the reference on the same query; its answer is checked against the product's

An entry that takes longer than half a second per request gets rounds of at least four times its
latency. During each round the workers' VmRSS is sampled every 100 ms, and the CPU time of the
workers and of their PostgreSQL backends is read before and after (/proc): CPU per request counts
the requests still in flight when wrk stops (the workers serve them). Then (not with --quick) it
profiles clinic-7d on the 1M database (bench/profile_availability.py); then booking throughput
with 16 clients against the in-app floor on a fresh database (bench/booking.py) and ours against
django-appointment on its own one-day slot endpoint, both servers up, alternating rounds
(bench/peer.py); --no-booking, --no-peer skip them. goals() judges every goal of issue 15;
it writes bench/out/results.json and bench/out/results.md (--write-results: bench/RESULTS.md too)
and prints the report.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.scaffold import gunicorn_command, start

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
BIN = Path(sys.executable).parent
DB_PREFIX = os.environ.get("BENCH_DB_PREFIX", "needlebook_bench_")  # databases: <prefix><history>[_<n>c]
# The goals of issue 15, checked by goals() below.
TARGET_CLINIC_WEEK = 0.35  # clinic-wide 7 days / the bare floor, req/s
TARGET_PRACTITIONER_DAY = 0.5  # one practitioner, one day / the bare floor, req/s
TARGET_CHAIN_LIMIT = 2.0  # chain-wide limit=10: 50 clinics within 2x of 5 clinics
TODAY_PER_CLINIC_MS = 14.5  # the full chain-wide answer's cost per clinic searched when issue 15 was filed
TARGET_PER_CLINIC_MS = TODAY_PER_CLINIC_MS / 3
TARGET_HISTORY = 1.05  # 1M within 1.05x of 10k, every scenario
TARGET_BOOKING = 0.2  # booking / the floor, req/s (201s)
TARGET_PEER = 5.0  # ours / django-appointment, req/s
TARGET_RSS_MB = 200


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Dataset:
    """One generated database: `label` names it in the results (10k, 1m, chain50)."""

    label: str
    history: str  # make_data --history: 10k, 1m, 2k ...
    clinics: int = 5

    @property
    def db(self) -> str:
        suffix = "" if self.clinics == 5 else f"_{self.clinics}c"
        return f"{DB_PREFIX}{self.history.lower()}{suffix}"


# make bench: the 5-clinic chain at 10k and 1M past appointments, and a 50-clinic chain.
FULL = (Dataset("10k", "10k"), Dataset("1m", "1m"), Dataset("chain50", "10k", 50))
# make bench-quick: small enough to build every time (about a minute on 2 busy cores).
QUICK = (Dataset("10k", "2k"), Dataset("1m", "40k"), Dataset("chain50", "2k", 50))


def _generator_digest() -> str:
    import hashlib

    return hashlib.sha256((ROOT / "bench" / "make_data.py").read_bytes()).hexdigest()[:16]


def ensure_data(dataset: Dataset | str, *, fresh: bool, admin_url: str) -> dict:
    if isinstance(dataset, str):  # "10k", "1m": the 5-clinic chain
        dataset = Dataset(dataset, dataset)
    meta_file = OUT / f"{dataset.db}.json"
    digest = _generator_digest()
    if not fresh and meta_file.exists():
        meta = json.loads(meta_file.read_text())
        age = datetime.now(UTC) - datetime.fromisoformat(meta["generated_at"])
        if age < timedelta(hours=12) and meta.get("generator") == digest and _database_answers(meta):
            meta["reused"] = True
            log(f"reusing {meta['db']} (generated {age.total_seconds() / 60:.0f} min ago)")
            return meta
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.make_data",
            "--history",
            dataset.history,
            "--clinics",
            str(dataset.clinics),
            "--db",
            dataset.db,
            "--admin-url",
            admin_url,
        ],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    meta = json.loads(meta_file.read_text())
    meta["generation_wall_seconds"] = round(time.monotonic() - started, 1)
    meta["generator"] = digest
    meta_file.write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def _migrations_head() -> str:
    from alembic.script import ScriptDirectory

    import migrations

    return ScriptDirectory.from_config(migrations.config("")).get_current_head()


def _database_answers(meta: dict) -> bool:
    import sqlalchemy as sa

    from models import make_engine

    try:
        engine = make_engine(meta["url"], connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            ok = (
                conn.scalar(
                    sa.text("SELECT count(*) FROM organizations WHERE id = :id"), {"id": meta["organization_id"]}
                )
                == 1
            )
            behind = conn.scalar(sa.text("SELECT version_num FROM alembic_version")) != _migrations_head()
        engine.dispose()
        if ok and behind:
            # A database made before a new migration would serve the app errors. Migrating it forward is
            # what a deployment does, and keeps the 1M database (a quarter of an hour to build) usable.
            import migrations

            log(f"migrating {meta['db']} to the current head")
            migrations.upgrade(meta["url"])
        return ok
    except Exception:  # noqa: BLE001 - any failure: regenerate
        return False


# ---------------------------------------------------------------------------- server


class Server:
    """gunicorn with 2 sync workers serving `app` (bench.floor_app:app: the product) against one database."""

    def __init__(self, url: str, port: int, app: str = "bench.floor_app:app"):
        self.url, self.port, self.app = url, port, app
        self.process: subprocess.Popen | None = None

    def __enter__(self):
        return self.launch().ready()

    def launch(self) -> Server:
        """Start gunicorn without waiting for it (ready() waits): several servers boot side by side."""
        # The rate limiter still runs on every /v1 request (its cost is measured), but with a limit no
        # load test reaches: one bench key at hundreds of requests a second would get 429 after 600 a minute.
        env = {**os.environ, "DATABASE_URL": self.url, "LOG_LEVEL": "WARNING", "RATE_LIMIT": "100000000 per minute"}
        self.process = start(
            gunicorn_command(self.port, app=self.app, options=("--log-level", "warning")),
            env=env,
            start_new_session=True,
        )
        return self

    def ready(self) -> Server:
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5) as response:
                        if response.status == 200 and len(self.workers()) == 2:
                            return self
                except OSError:  # refused, reset or timed out while the workers boot
                    pass
                if self.process.poll() is not None:
                    raise RuntimeError("gunicorn exited during startup")
                time.sleep(0.2)
            raise RuntimeError("gunicorn did not answer /healthz within 60 s")
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def workers(self) -> list[int]:
        """The worker processes: the master's children."""
        children = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                children.append(int(entry))
        return sorted(children)

    def backends(self) -> list[int]:
        """The PostgreSQL backends serving this database's clients (the workers' pooled connections)."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            return [
                pid
                for (pid,) in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
                )
            ]

    def __exit__(self, *exc):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # the master stops its workers
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class MemorySampler(threading.Thread):
    """Peak VmRSS per worker, sampled every 100 ms while the load runs."""

    def __init__(self, pids: list[int]):
        super().__init__(daemon=True)
        self.pids = pids
        self.peak = {pid: 0 for pid in pids}
        self.samples = 0
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            for pid in self.pids:
                self.peak[pid] = max(self.peak[pid], rss_kb(pid))
            self.samples += 1
            self.stopping.wait(0.1)

    def stop(self) -> dict[int, int]:
        self.stopping.set()
        self.join()
        return self.peak


# ---------------------------------------------------------------------------- load


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS[unit]


def parse_wrk(output: str) -> dict:
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}
    requests = re.search(r"(\d+) requests in ([\d.]+)(m?s)", output)
    result["requests"] = int(requests.group(1))
    result["seconds"] = float(requests.group(2)) / (1000 if requests.group(3) == "ms" else 1)
    result["latency_avg_ms"] = _ms(re.search(r"Latency\s+(\S+)", output).group(1))
    for pct in ("50", "90", "99"):
        result[f"p{pct}_ms"] = _ms(re.search(rf"\s{pct}%\s+(\S+)", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non_2xx"] = int(errors.group(1)) if errors else 0
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    result["socket_errors"] = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, socket.groups()), strict=True)) if socket else {}
    )
    return result


def wrk(url: str, *, duration: int, connections: int, threads: int, headers: dict) -> str:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    return subprocess.run([*command, url], check=True, capture_output=True, text=True).stdout


def check(url: str, headers: dict) -> dict:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
        return {"status": response.status, "rows": len(body.get("data", [])), "bytes": len(json.dumps(body))}


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes so far (/proc/<pid>/stat), in seconds."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def measure_round(server: Server, url: str, seconds: int, args, headers: dict) -> dict:
    """One wrk run; with the CPU the workers and their PostgreSQL backends spent meanwhile."""
    pids, backends = server.workers(), server.backends()
    sampler = MemorySampler(pids)
    load_before = os.getloadavg()[0]
    app_cpu, db_cpu = cpu_seconds(pids), cpu_seconds(backends)
    sampler.start()
    output = wrk(url, duration=seconds, connections=args.connections, threads=args.threads, headers=headers)
    peak = sampler.stop()
    result = parse_wrk(output)
    # wrk stops with one request in flight per connection; the sync workers still serve them (they
    # only notice the closed socket when they write). Wait until the workers are idle, and count
    # those requests in the CPU per request: on a slow entry (a second per request) they are a
    # large share of a short round.
    idle_since, last, deadline = time.monotonic(), cpu_seconds(pids), time.monotonic() + 60
    while time.monotonic() - idle_since < 0.2 and time.monotonic() < deadline:
        time.sleep(0.1)
        now_cpu = cpu_seconds(pids)
        if now_cpu != last:
            idle_since, last = time.monotonic(), now_cpu
    result.update(
        in_flight=args.connections,
        app_cpu=cpu_seconds(pids) - app_cpu,
        db_cpu=cpu_seconds(backends) - db_cpu,
        peak_rss_kb=[peak[p] for p in pids],
        vmhwm_kb=[rss_kb(p, "VmHWM") for p in pids],
        rss_samples=sampler.samples,
        loadavg_before=round(load_before, 2),
    )
    return result


def aggregate(name: str, probe: dict, rounds: list[dict]) -> dict:
    """Rounds of one scenario on one database: throughput over all of them; latency
    percentiles as the request-weighted mean of each round's (wrk reports per run)."""
    requests = sum(r["requests"] for r in rounds)
    served = requests + sum(r.get("in_flight", 0) for r in rounds)

    def weighted(key: str) -> float:
        return sum(r[key] * r["requests"] for r in rounds) / max(requests, 1)

    sockets: dict[str, int] = {}
    for r in rounds:
        for key, value in r["socket_errors"].items():
            sockets[key] = sockets.get(key, 0) + value
    workers = len(rounds[0]["peak_rss_kb"])
    return {
        "name": name,
        "rows": probe["rows"],
        "response_bytes": probe["bytes"],
        "requests": requests,
        "seconds": round(sum(r["seconds"] for r in rounds), 2),
        "rps": requests / sum(r["seconds"] for r in rounds),
        "round_rps": [round(r["rps"], 1) for r in rounds],
        **{key: round(weighted(key), 2) for key in ("latency_avg_ms", "p50_ms", "p90_ms", "p99_ms")},
        "non_2xx": sum(r["non_2xx"] for r in rounds),
        "socket_errors": sockets,
        # CPU per request served: the completed ones and those in flight when wrk stopped (measure_round).
        "app_cpu_ms_per_request": sum(r["app_cpu"] for r in rounds) / max(served, 1) * 1000,
        "db_cpu_ms_per_request": sum(r["db_cpu"] for r in rounds) / max(served, 1) * 1000,
        "worker_peak_rss_mb": [round(max(r["peak_rss_kb"][w] for r in rounds) / 1024, 1) for w in range(workers)],
        "worker_vmhwm_mb": [round(rounds[-1]["vmhwm_kb"][w] / 1024, 1) for w in range(workers)],
        "rss_samples": sum(r["rss_samples"] for r in rounds),
        "loadavg_before": [r["loadavg_before"] for r in rounds],
    }


# ---------------------------------------------------------------------------- scenarios


@dataclass
class Entry:
    """One measured thing: a scenario on one server."""

    key: str  # e.g. '10k clinic-7d', 'ref 10k clinic-7d', 'bare floor'
    server: str  # the key of its server
    url: str
    headers: dict


def _availability(base: str, **query) -> str:
    return f"{base}/v1/availability?{urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})}"


def practitioner_day(meta: dict, base: str, headers: dict, after: datetime) -> dict:
    """The measured clinic's practitioner and day (2-8 days ahead) with the most free starts for a
    microneedling visit: on a 60% booked calendar many practitioner-days have none."""
    import sqlalchemy as sa

    from models import make_engine

    engine = make_engine(meta["url"])
    with engine.connect() as conn:
        zone = ZoneInfo(
            conn.scalar(sa.text("SELECT timezone FROM clinics WHERE id = :c"), {"c": meta["measured_clinic_id"]})
        )
        staff = conn.execute(
            sa.text(
                "SELECT DISTINCT p.id, p.name, w.weekday FROM practitioners p JOIN working_hours w "
                "ON w.practitioner_id = p.id AND w.clinic_id = :c ORDER BY p.name"
            ),
            {"c": meta["measured_clinic_id"]},
        ).all()
    engine.dispose()
    best: dict = {}
    today = after.astimezone(zone).date()
    for offset in range(2, 9):
        day = today + timedelta(days=offset)
        start = datetime(day.year, day.month, day.day, tzinfo=zone)
        for practitioner, name, weekday in staff:
            if weekday != day.weekday():
                continue
            url = _availability(
                base,
                clinic_id=meta["measured_clinic_id"],
                treatment_type_id=meta["treatment_type_ids"]["microneedling"],
                practitioner_id=practitioner,
                start=start.isoformat(),
                end=(start + timedelta(days=1)).isoformat(),
                limit=500,
            )
            rows = check(url, headers)["rows"]
            if rows > best.get("rows", 0):
                best = {"practitioner_id": practitioner, "name": name, "day": start, "rows": rows}
    if not best:
        raise RuntimeError("no practitioner-day of the measured clinic has a free start")
    return best


def practitioner_by_name(meta: dict, name: str) -> str:
    import sqlalchemy as sa

    from models import make_engine

    engine = make_engine(meta["url"])
    with engine.connect() as conn:
        found = conn.scalar(
            sa.text("SELECT id FROM practitioners WHERE name = :n AND organization_id = :o"),
            {"n": name, "o": meta["organization_id"]},
        )
    engine.dispose()
    return found


def plan(
    meta: dict, ports: dict, window: tuple[datetime, datetime], *, quick: bool = False
) -> tuple[list[Entry], dict]:
    """Every entry of the rotation, compared ones side by side; and what was chosen (the practitioner-day)."""
    start, end = (w.isoformat() for w in window)
    auth = {label: {"Authorization": f"Bearer {m['api_key']}"} for label, m in meta.items()}
    base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    day = practitioner_day(meta["10k"], base["app 10k"], auth["10k"], window[0])
    prac = {"10k": day["practitioner_id"], "1m": practitioner_by_name(meta["1m"], day["name"])}
    day_start, day_end = day["day"].isoformat(), (day["day"] + timedelta(days=1)).isoformat()

    def query(label: str, scenario: str) -> dict:
        m = meta[label]
        common = {"treatment_type_id": m["treatment_type_ids"]["microneedling"], "start": start, "end": end}
        if scenario == "clinic-7d":
            return {**common, "clinic_id": m["measured_clinic_id"], "limit": 500}
        if scenario == "clinic-7d-limit50":
            return {**common, "clinic_id": m["measured_clinic_id"]}
        if scenario == "pooled-7d":
            return {**common, "clinic_id": m["pooled_clinic_id"], "limit": 500}
        if scenario == "practitioner-day":
            return {
                **common,
                "clinic_id": m["measured_clinic_id"],
                "practitioner_id": prac[label],
                "start": day_start,
                "end": day_end,
                "limit": 500,
            }
        if scenario == "chain-7d-limit10":
            return {**common, "limit": 10}
        if scenario == "chain-7d-full":
            return {**common, "limit": 500}
        raise ValueError(scenario)

    entries = [
        Entry("bare floor", "bare", f"{base['bare']}/bench/bare-floor", {}),
        Entry("10k floor", "app 10k", f"{base['app 10k']}/bench/floor", {}),
        Entry("1m floor", "app 1m", f"{base['app 1m']}/bench/floor", {}),
    ]
    for scenario in HISTORY_SCENARIOS:
        for label in ("10k", "1m"):
            entries.append(
                Entry(
                    f"{label} {scenario}",
                    f"app {label}",
                    _availability(base[f"app {label}"], **query(label, scenario)),
                    auth[label],
                )
            )
        if scenario in REFERENCE_SCENARIOS:
            entries.append(
                Entry(f"ref 10k {scenario}", "ref 10k", _availability(base["ref 10k"], **query("10k", scenario)), {})
            )
    for scenario in ("chain-7d-limit10", "chain-7d-full"):
        entries.append(
            Entry(
                f"chain50 {scenario}",
                "app chain50",
                _availability(base["app chain50"], **query("chain50", scenario)),
                auth["chain50"],
            )
        )
        if quick:  # the reference on the 50-clinic chain: make bench only (a second per request)
            continue
        entries.append(
            Entry(
                f"ref chain50 {scenario}",
                "ref chain50",
                _availability(base["ref chain50"], **query("chain50", scenario)),
                {},
            )
        )
    chosen = {"practitioner_day": {**day, "day": day_start, "practitioner_id_1m": prac["1m"]}}
    return entries, chosen


HISTORY_SCENARIOS = (
    "clinic-7d",
    "clinic-7d-limit50",
    "practitioner-day",
    "pooled-7d",
    "chain-7d-limit10",
    "chain-7d-full",
)
REFERENCE_SCENARIOS = ("clinic-7d", "practitioner-day", "pooled-7d", "chain-7d-limit10", "chain-7d-full")


def same_answers(entries: list[Entry]) -> dict:
    """The reference's answer against the product's, query by query (bench/reference_app.py must agree)."""
    by_key = {e.key: e for e in entries}
    out = {}
    for entry in entries:
        if not entry.key.startswith("ref "):
            continue
        product = by_key[entry.key.removeprefix("ref ")]
        answers = []
        for e in (product, entry):
            request = urllib.request.Request(e.url, headers=e.headers)
            with urllib.request.urlopen(request, timeout=30) as response:
                answers.append(json.loads(response.read())["data"])
        out[entry.key.removeprefix("ref ")] = {
            "identical": answers[0] == answers[1],
            "rows": len(answers[0]),
            "differences": _differences(*answers),
        }
    return out


NAMES = ("product", "reference")


def _differences(product: list[dict], reference: list[dict], most: int = 5) -> list[dict]:
    """The first starts whose slots differ (practitioner, room), to examine a disagreement later."""
    by_start = [{(s["starts_at"], s["clinic_id"]): s for s in answer} for answer in (product, reference)]
    found = []
    for key in sorted(set(by_start[0]) | set(by_start[1])):
        sides = [side.get(key) for side in by_start]
        if sides[0] != sides[1]:
            found.append(
                {"starts_at": key[0], "clinic_id": key[1]}
                | {name: s and [s["practitioner_id"], s["room_id"]] for name, s in zip(NAMES, sides, strict=True)}
            )
    return found[:most]


# ---------------------------------------------------------------------------- goals


def _cpu(result: dict) -> float:
    return result["app_cpu_ms_per_request"] + result["db_cpu_ms_per_request"]


def _goal(goal: str, target: str, measured: str, met: bool | None, factor: float | None) -> dict:
    """factor: measured/target as 'how far': >= 1 when met for an at-least goal (inverted for at-most)."""
    if met is None:
        by = ""
    elif met:
        by = f"met with {factor:.2f}x margin" if factor else "met"
    else:
        by = f"{factor:.2f}x short" if factor else "not met"
    return {"goal": goal, "target": target, "measured": measured, "met": met, "by": by}


def goals(results: dict, booking: dict | None, peer: dict | None) -> list[dict]:
    """Every goal of issue 15 with met / not met and by how much."""
    r = results
    out = []
    bare = r["bare floor"]["rps"]
    for scenario, target, name in (
        ("clinic-7d", TARGET_CLINIC_WEEK, "Clinic-wide 7 days / bare floor (req/s, 10k)"),
        ("practitioner-day", TARGET_PRACTITIONER_DAY, "One practitioner, one day / bare floor (req/s, 10k)"),
    ):
        ratio = r[f"10k {scenario}"]["rps"] / bare
        cpu = _cpu(r["bare floor"]) / _cpu(r[f"10k {scenario}"])
        out.append(
            _goal(
                name,
                f">= {target}",
                f"{ratio:.3f} (by CPU per request {cpu:.3f})",
                ratio >= target,
                ratio / target if ratio >= target else target / ratio,
            )
        )
    five, fifty = r["10k chain-7d-limit10"], r["chain50 chain-7d-limit10"]
    growth = _cpu(fifty) / _cpu(five)
    out.append(
        _goal(
            "Chain-wide 7 days limit=10: cost at 50 clinics / at 5 (CPU per request, worker + PostgreSQL)",
            f"<= {TARGET_CHAIN_LIMIT}x",
            f"{growth:.2f}x ({_cpu(fifty):.1f} vs {_cpu(five):.1f} ms; "
            f"req/s {five['rps'] / max(fifty['rps'], 1e-9):.2f}x)",
            growth <= TARGET_CHAIN_LIMIT,
            TARGET_CHAIN_LIMIT / growth if growth <= TARGET_CHAIN_LIMIT else growth / TARGET_CHAIN_LIMIT,
        )
    )
    full5, full50 = r["10k chain-7d-full"], r["chain50 chain-7d-full"]
    clinics5, clinics50 = results["_clinics"]["10k"], results["_clinics"]["chain50"]
    per_clinic = (_cpu(full50) - _cpu(full5)) / (clinics50 - clinics5)
    out.append(
        _goal(
            "Full chain-wide 7 days (limit=500): cost per clinic searched (CPU, worker + PostgreSQL)",
            f"<= {TARGET_PER_CLINIC_MS:.2f} ms (today's {TODAY_PER_CLINIC_MS} / 3)",
            f"{per_clinic:.2f} ms per clinic "
            f"({_cpu(full5):.1f} ms at {clinics5}, {_cpu(full50):.1f} ms at {clinics50})",
            per_clinic <= TARGET_PER_CLINIC_MS,
            TARGET_PER_CLINIC_MS / per_clinic
            if per_clinic <= TARGET_PER_CLINIC_MS and per_clinic > 0
            else per_clinic / TARGET_PER_CLINIC_MS
            if per_clinic > 0
            else None,
        )
    )
    worst = None
    for scenario in ("floor", *HISTORY_SCENARIOS):
        small, big = r[f"10k {scenario}"], r[f"1m {scenario}"]
        ratio = small["rps"] / max(big["rps"], 1e-9)
        cpu = _cpu(big) / _cpu(small)
        out.append(
            _goal(
                f"History: {scenario}, 1M vs 10k (req/s 10k / req/s 1M)",
                f"<= {TARGET_HISTORY}x",
                f"{ratio:.3f}x (CPU per request {cpu:.3f}x)",
                ratio <= TARGET_HISTORY,
                TARGET_HISTORY / ratio if ratio <= TARGET_HISTORY else ratio / TARGET_HISTORY,
            )
        )
        worst = max(worst or ratio, ratio)
    if booking:
        ratio = booking["ratio"]
        out.append(
            _goal(
                f"Booking / in-app floor ({booking['connections']} clients, 201s, req/s)",
                f">= {TARGET_BOOKING}",
                f"{ratio:.3f} (by CPU {booking['ratio_cpu']:.3f})",
                ratio >= TARGET_BOOKING,
                ratio / TARGET_BOOKING if ratio >= TARGET_BOOKING else TARGET_BOOKING / ratio,
            )
        )
    else:
        out.append(_goal("Booking / floor", f">= {TARGET_BOOKING}", "not measured (--no-booking)", None, None))
    if peer:
        ratio = peer["ratio_rps"]
        out.append(
            _goal(
                "Ours / django-appointment, its one-day slot endpoint (req/s)",
                f">= {TARGET_PEER}x",
                f"{ratio:.2f}x (by CPU {peer['ratio_cpu']:.2f}x)",
                ratio >= TARGET_PEER,
                ratio / TARGET_PEER if ratio >= TARGET_PEER else TARGET_PEER / ratio,
            )
        )
    else:
        out.append(_goal("Ours / django-appointment", f">= {TARGET_PEER}x", "not measured (--no-peer)", None, None))
    peaks = [m for k, v in r.items() if not k.startswith(("_", "ref ", "bare")) for m in v["worker_peak_rss_mb"]]
    if booking:
        peaks.append(booking["booking"]["peak_rss_mb"])
    peak = max(peaks)
    out.append(
        _goal(
            "Worker resident memory (peak VmRSS, every product worker)",
            f"< {TARGET_RSS_MB} MB",
            f"{peak:.0f} MB",
            peak < TARGET_RSS_MB,
            TARGET_RSS_MB / peak if peak < TARGET_RSS_MB else peak / TARGET_RSS_MB,
        )
    )
    return out


def reference_gaps(results: dict, answers: dict) -> list[str]:
    lines = []
    for scenario, check_ in answers.items():
        product, reference = results[scenario], results[f"ref {scenario}"]
        lines.append(
            f"| {scenario} | {product['rps']:.1f} | {reference['rps']:.1f} | "
            f"**{_cpu(product) / _cpu(reference):.2f}x** | {_cpu(product):.2f} | {_cpu(reference):.2f} | "
            f"{'yes' if check_['identical'] else '**no**'} ({check_['rows']} rows) |"
        )
    return lines


# ---------------------------------------------------------------------------- report


def report(results: dict, meta: dict, extra: dict, args, command: str, started: datetime, answers: dict) -> str:
    rows = []
    for key, r in results.items():
        if key.startswith("_"):
            continue
        rows.append(
            f"| {key} | {r['rps']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['app_cpu_ms_per_request']:.2f} | "
            f"{r['db_cpu_ms_per_request']:.2f} | {r['rows']} | {r['requests']} | {r['non_2xx']} | "
            f"{' / '.join(f'{m:.0f}' for m in r['worker_peak_rss_mb'])} |"
        )
    loads = [x for k, r in results.items() if not k.startswith("_") for x in r["loadavg_before"]]
    verdicts = goals(results, extra.get("booking"), extra.get("peer"))
    met = sum(1 for v in verdicts if v["met"])
    judged = sum(1 for v in verdicts if v["met"] is not None)
    lines = [
        "# Benchmarks: results (issue 15)",
        "",
        f"Run {started.strftime('%Y-%m-%d %H:%M UTC')}, `{command}`"
        f"{' (QUICK: small data, short rounds)' if args.quick else ''}: "
        f"wrk -t{args.threads} -c{args.connections}, {args.duration}s per entry in {args.rounds} rounds; every entry "
        f"below ran in one rotation, round by round in alternating order (compared entries side by side), after a "
        f"{args.warmup}s warm-up each; every server up at once, gunicorn 2 sync workers each; 1-minute load average "
        f"before the rounds {min(loads):.2f}-{max(loads):.2f} on {os.cpu_count()} cores.",
        "",
        f"## Goals: {met} of {judged} met",
        "",
        "| goal | target | measured | met | by how much |",
        "|---|---|---|---|---|",
        *(
            f"| {v['goal']} | {v['target']} | {v['measured']} | "
            f"{'-' if v['met'] is None else 'yes' if v['met'] else '**no**'} | {v['by']} |"
            for v in verdicts
        ),
        "",
        "## The product against the reference (bench/reference_app.py: one round trip, the same engine, orjson)",
        "",
        "| scenario | product req/s | reference req/s | product / reference (CPU per request) | product CPU ms/req | "
        "reference CPU ms/req | same answer |",
        "|---|---:|---:|---:|---:|---:|---|",
        *reference_gaps(results, answers),
        "",
        "## Every entry",
        "",
        "| entry | req/s | p50 ms | p99 ms | worker CPU ms/req | PostgreSQL CPU ms/req | rows | requests | non-2xx "
        "| worker peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        *rows,
        "",
        "Entries: `bare floor` is bench/bare_app.py (flask-smorest outside the app, 10 rows from PostgreSQL, on the "
        "10k database); `<data> floor` the in-app floor (bench/floor_app.py); `clinic-7d` the measured clinic, 7 days, "
        "limit=500; `clinic-7d-limit50` the same with the default limit; `practitioner-day` one practitioner, one "
        "day; `pooled-7d` the clinic with a numbing area and counted devices, 7 days; `chain-7d-limit10` and "
        "`chain-7d-full` the whole chain (no clinic_id), 7 days, limit=10 and limit=500; `ref ...` the reference "
        "on the same query.",
        "",
    ]
    p = results["_chosen"]["practitioner_day"]
    lines.append(f"- practitioner-day: {p['name']} on {p['day'][:10]}, {p['rows']} slots at 10k.")
    for label, m in meta.items():
        lines.append(
            f"- {label} ({m['db']}): {m['clinics']} clinics, {m['counts']['past_appointments']:,} past appointments "
            f"({m['counts']['appointments']:,} appointments, {m['counts']['claims']:,} claims) from "
            f"{m['first_history_day']}; the measured clinic's next 14 days {m['window_utilization']['booked']:.0%} "
            "booked; "
            + (
                f"kept from {m['generated_at']}."
                if m.get("reused")
                else f"generated in {m.get('generation_wall_seconds', m['seconds']['total'])}s."
            )
        )
    if extra.get("profile"):
        b = extra["profile"]
        lines.append(
            f"- Profile (1m, clinic-7d in-process): {b['ms_per_request']:.1f} ms per request: loader "
            f"{b['breakdown_ms']['load']:.1f} ms, engine {b['breakdown_ms']['engine']:.1f} ms, the rest "
            f"{b['breakdown_ms']['rest']:.1f} ms; {b['queries_per_request']} queries; bench/out/profile.txt."
        )
    if extra.get("booking"):
        from bench import booking

        lines += ["", "## Booking throughput (bench/booking.py)", "", booking.table(extra["booking"])]
    if extra.get("peer"):
        from bench import peer

        lines += ["", "## Peer: django-appointment (bench/peer.py)", "", peer.table(extra["peer"])]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="The availability benchmark (bench/RESULTS.md).")
    parser.add_argument("--duration", type=int, default=None, help="seconds of load per entry (20; quick 4)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds the duration is split into (4; quick 2)")
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="seconds of unmeasured load before each (3; quick 0: the probe request only)",
    )
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--port", type=int, default=8765, help="the first of the ports used (about 25)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="make bench-quick: small generated data (built every time), short rounds, the same ratios",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="regenerate the databases (by default, ones generated in the last 12 hours are kept)",
    )
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--no-booking", action="store_true", help="skip booking throughput (bench/booking.py)")
    parser.add_argument("--no-peer", action="store_true", help="skip the django-appointment comparison (bench/peer.py)")
    parser.add_argument(
        "--write-results", action="store_true", help="also write the report to bench/RESULTS.md (after a quiet run)"
    )
    args = parser.parse_args(argv)
    defaults = (4, 2, 0) if args.quick else (20, 4, 3)
    for name, value in zip(("duration", "rounds", "warmup"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, value)
    if shutil.which("wrk") is None:
        log("wrk is not installed (make bench installs it: apt-get install wrk)")
        return 2
    started = datetime.now(UTC)
    given = sys.argv[1:] if argv is None else argv
    target = "make bench-quick" if args.quick else "make bench"
    command = (
        (target + (f" BENCH_ARGS='{' '.join(g for g in given if g != '--quick')}'" if len(given) > args.quick else ""))
        if os.environ.get("MAKELEVEL")
        else " ".join([".venv/bin/python -m bench.run", *given])
    )
    OUT.mkdir(exist_ok=True)
    datasets = QUICK if args.quick else FULL
    meta = {}
    for dataset in datasets:
        log(f"data: {dataset.label} ({dataset.db}: {dataset.clinics} clinics, {dataset.history} past appointments)")
        meta[dataset.label] = ensure_data(dataset, fresh=args.fresh or args.quick, admin_url=args.admin_url)
    # One window for every scenario: from now (the engine applies the 2-hour notice) for 7 days.
    window_start = datetime.now(UTC).replace(second=0, microsecond=0)
    window = (window_start, window_start + timedelta(days=7))
    servers_wanted = {
        "bare": (meta["10k"]["url"], "bench.bare_app:app"),
        "app 10k": (meta["10k"]["url"], "bench.floor_app:app"),
        "app 1m": (meta["1m"]["url"], "bench.floor_app:app"),
        "app chain50": (meta["chain50"]["url"], "bench.floor_app:app"),
        "ref 10k": (meta["10k"]["url"], "bench.reference_app:app"),
        "ref chain50": (meta["chain50"]["url"], "bench.reference_app:app"),
    }
    if args.quick:
        del servers_wanted["ref chain50"]
    ports = {name: args.port + i for i, name in enumerate(servers_wanted)}
    results: dict = {"_clinics": {label: m["clinics"] for label, m in meta.items()}}
    per_round = max(1, args.duration // args.rounds)
    with contextlib.ExitStack() as stack:
        servers = {}
        for name, (url, app) in servers_wanted.items():  # all boot at once, then each is waited for
            servers[name] = Server(url, ports[name], app).launch()
            stack.callback(servers[name].__exit__, None, None, None)
        for server in servers.values():
            server.ready()
        entries, chosen = plan(meta, ports, window, quick=args.quick)
        results["_chosen"] = chosen
        answers = same_answers(entries)
        for scenario, same in answers.items():
            if not same["identical"]:
                log(
                    f"  the reference answers {scenario} differently from the product (reported): {same['differences']}"
                )
        probes, seconds = {}, {}
        for entry in entries:
            began = time.monotonic()
            probes[entry.key] = check(entry.url, entry.headers)  # a 200 with rows, or the run stops here
            latency = time.monotonic() - began
            if probes[entry.key]["status"] != 200 or probes[entry.key]["rows"] == 0:
                raise RuntimeError(f"{entry.key}: {probes[entry.key]}")
            # A slow entry (the 50-clinic chain: a second or more per request) gets rounds long enough
            # to complete about 8 requests on the 2 workers (up to 4 rounds' length); its probe was its warm-up.
            seconds[entry.key] = max(per_round, min(math.ceil(4 * latency), 4 * per_round))
            if latency > 0.5 or not args.warmup:
                continue
            wrk(
                entry.url,
                duration=args.warmup,
                connections=args.connections,
                threads=args.threads,
                headers=entry.headers,
            )
        rounds: dict[str, list] = {entry.key: [] for entry in entries}
        log(f"{len(entries)} entries x {args.rounds} rounds of {per_round}s")
        for number in range(args.rounds):
            for entry in entries if number % 2 == 0 else entries[::-1]:
                rounds[entry.key].append(
                    measure_round(servers[entry.server], entry.url, seconds[entry.key], args, entry.headers)
                )
        for entry in entries:
            result = results[entry.key] = aggregate(entry.key, probes[entry.key], rounds[entry.key])
            log(
                f"  {entry.key:32s} {result['rps']:8.1f} req/s  p50 {result['p50_ms']:7.1f} ms  cpu/req app "
                f"{result['app_cpu_ms_per_request']:5.1f} ms db {result['db_cpu_ms_per_request']:4.1f} ms  "
                f"rows {result['rows']}  rss {result['worker_peak_rss_mb']} MB"
            )
            if result["non_2xx"]:
                raise RuntimeError(f"{entry.key}: {result['non_2xx']} non-2xx responses under load")
    extra: dict[str, dict] = {}
    if not args.no_profile and not args.quick:
        log("profile on 1m")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.profile_availability",
                "--meta",
                str(OUT / f"{meta['1m']['db']}.json"),
                "--start",
                window[0].isoformat(),
                "--end",
                window[1].isoformat(),
            ],
            cwd=ROOT,
            check=True,
        )
        extra["profile"] = json.loads((OUT / "profile.json").read_text())
    # Booking throughput and the peer, after the servers above have stopped, with the same duration and rounds.
    common = ["--duration", str(args.duration), "--rounds", str(args.rounds), "--warmup", str(max(args.warmup, 1))]
    common += ["--admin-url", args.admin_url]
    if not args.no_booking:
        from bench import booking

        log("booking throughput on a fresh database (bench/booking.py)")
        booking_args = booking.parser().parse_args(
            [*common, "--port", str(args.port + len(ports))]
            + (["--patients", "2400", "--days", "40"] if args.quick else [])
        )
        booking_args.started = datetime.now(UTC).isoformat(timespec="seconds")
        extra["booking"] = booking.run(booking_args)
    if not args.no_peer:
        from bench import peer

        log("ours against django-appointment, one practitioner and one day (bench/peer.py)")
        peer_args = peer.parser().parse_args(
            [
                *common,
                "--connections",
                str(args.connections),
                "--threads",
                str(args.threads),
                "--port",
                str(args.port + len(ports) + 1),
            ]
        )
        peer_args.started = datetime.now(UTC).isoformat(timespec="seconds")
        extra["peer"] = peer.run(peer_args, meta=meta["10k"])
    text = report(results, meta, extra, args, command, started, answers)
    (OUT / "results.json").write_text(
        json.dumps(
            {
                "started": started.isoformat(),
                "finished": datetime.now(UTC).isoformat(),
                "command": command,
                "window": [w.isoformat() for w in window],
                "args": vars(args),
                "results": results,
                "reference_answers": answers,
                "goals": goals(results, extra.get("booking"), extra.get("peer")),
                **extra,
                "data": {label: {k: v for k, v in m.items() if k != "api_key"} for label, m in meta.items()},
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    (OUT / "results.md").write_text(text)
    if args.write_results:
        (ROOT / "bench" / "RESULTS.md").write_text(text)
    print(text)
    log(f"done in {(datetime.now(UTC) - started).total_seconds():.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
