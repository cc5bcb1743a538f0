"""Run the availability benchmark end to end (`make bench`).

    .venv/bin/python -m bench.run            # as `make bench`
    .venv/bin/python -m bench.run --fresh    # regenerate both databases even if recent ones exist

In one run: generates the 10k and 1M databases (bench/make_data.py), or keeps them
when they were generated in the last 12 hours by the current generator (their
booked window still covers the 7 days measured); serves each with gunicorn
(`bench.floor_app:app`, 2 sync workers as `make run`, both databases at once on two
ports) and loads it with wrk, the same concurrency for every scenario:

  floor         GET /bench/floor: 10 rows from the database through a schema (a)
  floor-static  GET /bench/floor-static: 10 rows from memory through the schema
  availability  GET /v1/availability: the measured clinic, microneedling, the next
                7 days, limit=500 (every start of the week) (b), (c)
  avail-50      the same with the default limit (50 slots)

Each scenario runs for --duration seconds per database, split into --rounds rounds
that alternate between the databases. During each round the workers' VmRSS
(/proc/<pid>/status) is sampled every 100 ms, and the CPU time of the workers and
of their PostgreSQL backends is read before and after (/proc/<pid>/stat): CPU per
request does not depend on what else the machine is doing. Then it profiles the
availability request on the 1M database and checks with EXPLAIN that the loader's
claim query is an index range scan (bench/profile_availability.py). Then two more
scenarios: booking throughput with 16 clients against the floor on a fresh
database (bench/booking.py), and our availability against django-appointment's for
one practitioner and one day (bench/peer.py); --no-booking, --no-peer skip them. It writes
bench/out/results.json and bench/out/results.md (the table for bench/RESULTS.md)
and prints the table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.scaffold import gunicorn_command, start

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
BIN = Path(sys.executable).parent
SIZES = ("10k", "1m")
TARGET_RATIO = 0.20  # (b) at least 20% of (a)'s requests per second
TARGET_HISTORY = 1.2  # (c) 1M within 1.2x of 10k
TARGET_RSS_MB = 200


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- data


def _generator_digest() -> str:
    import hashlib

    return hashlib.sha256((ROOT / "bench" / "make_data.py").read_bytes()).hexdigest()[:16]


def ensure_data(size: str, *, fresh: bool, admin_url: str) -> dict:
    meta_file = OUT / f"needlebook_bench_{size}.json"
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
        [sys.executable, "-m", "bench.make_data", "--history", size, "--admin-url", admin_url],
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
            # A database made before a new migration would serve the app errors: regenerate.
            ok = ok and conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == _migrations_head()
        engine.dispose()
        return ok
    except Exception:  # noqa: BLE001 - any failure: regenerate
        return False


# ---------------------------------------------------------------------------- server


class Server:
    """gunicorn with 2 sync workers serving bench.floor_app:app against one database."""

    def __init__(self, url: str, port: int):
        self.url, self.port = url, port
        self.process: subprocess.Popen | None = None

    def __enter__(self):
        # The rate limiter still runs on every /v1 request (its cost is measured), but with a limit no
        # load test reaches: one bench key at hundreds of requests a second would get 429 after 600 a minute.
        env = {**os.environ, "DATABASE_URL": self.url, "LOG_LEVEL": "WARNING", "RATE_LIMIT": "100000000 per minute"}
        self.process = start(
            gunicorn_command(self.port, app="bench.floor_app:app", options=("--log-level", "warning")),
            env=env,
            start_new_session=True,
        )
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
    result.update(
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
        "app_cpu_ms_per_request": sum(r["app_cpu"] for r in rounds) / max(requests, 1) * 1000,
        "db_cpu_ms_per_request": sum(r["db_cpu"] for r in rounds) / max(requests, 1) * 1000,
        "worker_peak_rss_mb": [round(max(r["peak_rss_kb"][w] for r in rounds) / 1024, 1) for w in range(workers)],
        "worker_vmhwm_mb": [round(rounds[-1]["vmhwm_kb"][w] / 1024, 1) for w in range(workers)],
        "rss_samples": sum(r["rss_samples"] for r in rounds),
        "loadavg_before": [r["loadavg_before"] for r in rounds],
    }


def scenarios(meta: dict, port: int, start: datetime, end: datetime) -> list[tuple[str, str]]:
    base = f"http://127.0.0.1:{port}"
    query = {
        "clinic_id": meta["measured_clinic_id"],
        "treatment_type_id": meta["treatment_type_ids"]["microneedling"],
        "start": start.isoformat(),
        "end": end.isoformat(),
    }
    return [
        ("floor", f"{base}/bench/floor"),
        ("floor-static", f"{base}/bench/floor-static"),
        ("availability", f"{base}/v1/availability?{urllib.parse.urlencode({**query, 'limit': 500})}"),
        ("avail-50", f"{base}/v1/availability?{urllib.parse.urlencode(query)}"),
    ]


# ---------------------------------------------------------------------------- report


def report(results: dict, meta: dict, profile: dict, args, command: str, started: datetime) -> str:
    rows = []
    for name in next(iter(results.values())):
        for size in results:
            r = results[size][name]
            rows.append(
                f"| {name} | {size} | {r['rps']:.1f} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | "
                f"{r['p99_ms']:.1f} | {r['app_cpu_ms_per_request']:.2f} | {r['db_cpu_ms_per_request']:.2f} | "
                f"{r['rows']} | {r['requests']} | {r['non_2xx']} | "
                f"{' / '.join(f'{m:.0f}' for m in r['worker_peak_rss_mb'])} |"
            )
    loads = [x for size in results for r in results[size].values() for x in r["loadavg_before"]]
    lines = [
        f"Run {started.strftime('%Y-%m-%d %H:%M UTC')}, `{command}`: wrk -t{args.threads} -c{args.connections}, "
        f"{args.duration}s per scenario and database in {args.rounds} rounds alternating between the two "
        f"databases, after a {args.warmup}s warm-up; gunicorn 2 sync workers per database; 1-minute load average "
        f"before the rounds {min(loads):.2f}-{max(loads):.2f} on {os.cpu_count()} cores.",
        "",
        "| scenario | history | req/s | p50 ms | p90 ms | p99 ms | worker CPU ms/req | PostgreSQL CPU ms/req | "
        "rows/response | requests | non-2xx | worker peak RSS MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        *rows,
        "",
        "| target | measured | met |",
        "|---|---|---|",
        *(
            f"| {v['target']} | {v['measured']} | {'' if v['met'] is None else 'yes' if v['met'] else '**no**'} |"
            for v in verdict(results)
        ),
        "",
    ]
    for size, m in meta.items():
        lines.append(
            f"- {size}: {m['counts']['past_appointments']:,} past appointments "
            f"({m['counts']['appointments']:,} appointments, {m['counts']['claims']:,} claims, "
            f"{m['counts']['patients']:,} patients) from {m['first_history_day']}; the measured clinic's "
            f"next 14 days {m['window_utilization']['booked']:.0%} booked (practitioners' calendars; "
            f"claimed: practitioner time {m['window_utilization']['practitioner']:.0%}, rooms "
            f"{m['window_utilization']['room']:.0%}); "
            + (
                f"kept from {m['generated_at']}."
                if m.get("reused")
                else f"generated in {m.get('generation_wall_seconds', m['seconds']['total'])}s."
            )
        )
    if profile:
        b = profile["breakdown_ms"]
        lines.append(
            f"- Profile (1m, {profile['requests']} requests in-process, no profiler): "
            f"{profile['ms_per_request']:.1f} ms per request: loader {b['load']:.1f} ms (SQL of the whole "
            f"request {b['load_sql']:.1f} ms in {profile['queries_per_request']} queries), engine "
            f"{b['engine']:.1f} ms, the rest (Flask, auth, arguments, response schema) {b['rest']:.1f} ms; "
            f"{profile['claim_rows']} claim rows loaded; bench/out/profile.txt."
        )
        lines.append(f"- EXPLAIN of the claim query (1m): {profile['explain_summary']}; bench/out/explain.txt.")
    return "\n".join(lines) + "\n"


def _cpu(result: dict) -> float:
    return result["app_cpu_ms_per_request"] + result["db_cpu_ms_per_request"]


def verdict(results: dict) -> list[dict]:
    """The targets; rows with met=None are load-independent estimates, for reading the others."""
    out = []
    for size in results:
        floor, avail = results[size]["floor"], results[size]["availability"]
        out.append(
            {
                "target": f"(b)/(a) >= {TARGET_RATIO:.2f} at {size} (req/s)",
                "measured": f"{avail['rps'] / floor['rps']:.3f}",
                "met": avail["rps"] / floor["rps"] >= TARGET_RATIO,
            }
        )
        out.append(
            {
                "target": f"(b)/(a) at {size} by CPU per request (worker + PostgreSQL), estimate",
                "measured": f"{_cpu(floor) / _cpu(avail):.3f}",
                "met": None,
            }
        )
    if all(s in results for s in SIZES):
        small, big = results["10k"]["availability"], results["1m"]["availability"]
        throughput = small["rps"] / big["rps"]
        latency = big["p50_ms"] / small["p50_ms"]
        out.append(
            {
                "target": f"(c) 1m vs 10k throughput within {TARGET_HISTORY}x (10k req/s / 1m req/s)",
                "measured": f"{throughput:.3f}x",
                "met": throughput <= TARGET_HISTORY,
            }
        )
        out.append(
            {
                "target": f"(c) 1m vs 10k p50 latency within {TARGET_HISTORY}x (1m p50 / 10k p50)",
                "measured": f"{latency:.3f}x",
                "met": latency <= TARGET_HISTORY,
            }
        )
        out.append(
            {
                "target": "(c) 1m vs 10k CPU per request (worker + PostgreSQL), estimate",
                "measured": f"{_cpu(big) / _cpu(small):.3f}x",
                "met": None,
            }
        )
    peak = max(m for size in results for r in results[size].values() for m in r["worker_peak_rss_mb"])
    out.append(
        {"target": f"worker peak RSS < {TARGET_RSS_MB} MB", "measured": f"{peak:.0f} MB", "met": peak < TARGET_RSS_MB}
    )
    return out


# ---------------------------------------------------------------------------- main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="The availability benchmark (bench/RESULTS.md).")
    parser.add_argument("--duration", type=int, default=20, help="seconds of load per scenario and database")
    parser.add_argument(
        "--rounds", type=int, default=4, help="rounds the duration is split into, alternating databases"
    )
    parser.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured load before each")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="regenerate the databases (by default, ones generated in the last 12 hours are kept)",
    )
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--no-booking", action="store_true", help="skip booking throughput (bench/booking.py)")
    parser.add_argument("--no-peer", action="store_true", help="skip the django-appointment comparison (bench/peer.py)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        log("wrk is not installed (make bench installs it: apt-get install wrk)")
        return 2
    started = datetime.now(UTC)
    given = sys.argv[1:] if argv is None else argv
    command = (
        ("make bench" + (f" BENCH_ARGS='{' '.join(given)}'" if given else ""))
        if os.environ.get("MAKELEVEL")
        else " ".join([".venv/bin/python -m bench.run", *given])
    )
    OUT.mkdir(exist_ok=True)
    sizes = [s for s in args.sizes.split(",") if s]
    meta = {}
    for size in sizes:
        log(f"data: {size}")
        meta[size] = ensure_data(size, fresh=args.fresh, admin_url=args.admin_url)
    # One window for every scenario: from now (the engine applies the 2-hour notice) for 7 days.
    window_start = datetime.now(UTC).replace(second=0, microsecond=0)
    window_end = window_start + timedelta(days=7)
    # Both databases are served at once (ports --port and --port+1) and each scenario runs
    # in --rounds rounds alternating between them, so that a change in the machine's
    # background load falls on both sides of each comparison alike.
    results: dict[str, dict] = {size: {} for size in sizes}
    per_round = max(1, args.duration // args.rounds)
    with contextlib.ExitStack() as stack:
        servers = {size: stack.enter_context(Server(meta[size]["url"], args.port + i)) for i, size in enumerate(sizes)}
        headers = {size: {"Authorization": f"Bearer {meta[size]['api_key']}"} for size in sizes}
        urls = {size: dict(scenarios(meta[size], servers[size].port, window_start, window_end)) for size in sizes}
        for name in urls[sizes[0]]:
            probes = {}
            for size in sizes:
                probes[size] = check(urls[size][name], headers[size])  # a 200 with rows, or the run stops here
                if probes[size]["status"] != 200 or probes[size]["rows"] == 0:
                    raise RuntimeError(f"{size} {name}: {probes[size]}")
                wrk(
                    urls[size][name],
                    duration=args.warmup,
                    connections=args.connections,
                    threads=args.threads,
                    headers=headers[size],
                )
            rounds: dict[str, list] = {size: [] for size in sizes}
            for number in range(args.rounds):
                for size in sizes if number % 2 == 0 else sizes[::-1]:
                    rounds[size].append(measure_round(servers[size], urls[size][name], per_round, args, headers[size]))
            for size in sizes:
                result = results[size][name] = aggregate(name, probes[size], rounds[size])
                log(
                    f"  {size:3s} {name:13s} {result['rps']:8.1f} req/s  p50 {result['p50_ms']:7.1f} ms  "
                    f"p99 {result['p99_ms']:7.1f} ms  cpu/req app {result['app_cpu_ms_per_request']:5.1f} ms "
                    f"db {result['db_cpu_ms_per_request']:4.1f} ms  non-2xx {result['non_2xx']}  "
                    f"rss {result['worker_peak_rss_mb']} MB  rounds {result['round_rps']}"
                )
                if result["non_2xx"]:
                    raise RuntimeError(f"{size} {name}: {result['non_2xx']} non-2xx responses under load")
    profile = {}
    if not args.no_profile and "1m" in meta:
        log("profile and EXPLAIN on 1m")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.profile_availability",
                "--meta",
                str(OUT / f"{meta['1m']['db']}.json"),
                "--start",
                window_start.isoformat(),
                "--end",
                window_end.isoformat(),
            ],
            cwd=ROOT,
            check=True,
        )
        profile = json.loads((OUT / "profile.json").read_text())
    table = report(results, meta, profile, args, command, started)
    # Booking throughput and the peer, after the servers above have stopped, with the same duration and rounds.
    # Booking keeps its own 16 clients; the peer comparison uses this run's concurrency.
    common = [
        "--duration",
        str(args.duration),
        "--rounds",
        str(args.rounds),
        "--warmup",
        str(args.warmup),
        "--admin-url",
        args.admin_url,
    ]
    extra: dict[str, dict] = {}
    if not args.no_booking:
        from bench import booking

        log("booking throughput on a fresh database (bench/booking.py)")
        booking_args = booking.parser().parse_args(common)
        booking_args.started = datetime.now(UTC).isoformat(timespec="seconds")
        extra["booking"] = booking.run(booking_args)
        table += "\n### Booking throughput (bench/booking.py)\n\n" + booking.table(extra["booking"])
    if not args.no_peer:
        from bench import peer

        log("ours against django-appointment, one practitioner and one day (bench/peer.py)")
        peer_args = peer.parser().parse_args(
            [*common, "--connections", str(args.connections), "--threads", str(args.threads)]
        )
        peer_args.started = datetime.now(UTC).isoformat(timespec="seconds")
        extra["peer"] = peer.run(peer_args)
        table += "\n### Peer: django-appointment (bench/peer.py)\n\n" + peer.table(extra["peer"])
    (OUT / "results.json").write_text(
        json.dumps(
            {
                "started": started.isoformat(),
                "command": command,
                "window": [window_start.isoformat(), window_end.isoformat()],
                "args": vars(args),
                "results": results,
                "verdict": verdict(results),
                "profile": profile,
                **extra,
                "data": {size: {k: v for k, v in m.items() if k != "api_key"} for size, m in meta.items()},
            },
            indent=2,
        )
        + "\n"
    )
    (OUT / "results.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
