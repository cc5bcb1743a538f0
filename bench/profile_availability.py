"""Profile one availability request in-process, and EXPLAIN the loader's claim query.

    .venv/bin/python -m bench.profile_availability --meta bench/out/needlebook_bench_1m.json

Runs GET /v1/availability (the measured clinic, microneedling, 7 days, limit=500)
through the Flask test client against the benchmark database: a few warm-up
requests, then N requests under cProfile, timing the SQL (SQLAlchemy cursor
events) apart from the rest. The claim query the loader sent is captured and run
again as EXPLAIN (ANALYZE, BUFFERS) with the same parameters, to show it is an
index range scan. Writes bench/out/profile.txt, explain.txt and profile.json.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

OUT = Path(__file__).resolve().parent / "out"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--meta", required=True)
    parser.add_argument("--start", help="window start (default now)")
    parser.add_argument("--end", help="window end (default start + 7 days)")
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--limit", type=int, default=500)
    args = parser.parse_args(argv)
    meta = json.loads(Path(args.meta).read_text())
    os.environ["DATABASE_URL"] = meta["url"]
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    from api import create_app

    app = create_app()
    engine = app.extensions["db_engine"]
    start = datetime.fromisoformat(args.start) if args.start else datetime.now(UTC).replace(microsecond=0)
    end = datetime.fromisoformat(args.end) if args.end else start + timedelta(days=7)
    query = {
        "clinic_id": meta["measured_clinic_id"],
        "treatment_type_id": meta["treatment_type_ids"]["microneedling"],
        "start": start.isoformat(),
        "end": end.isoformat(),
        "limit": args.limit,
    }
    headers = {"Authorization": f"Bearer {meta['api_key']}"}

    statements: list[tuple[str, object, float]] = []
    pending = {}

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):
        pending[id(cursor)] = time.perf_counter()

    @sa.event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters, time.perf_counter() - pending.pop(id(cursor), time.perf_counter())))

    client = app.test_client()

    def call():
        response = client.get("/v1/availability", query_string=query, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    for _ in range(5):
        body = call()
    slots = len(body["data"])
    statements.clear()
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for _ in range(args.requests):
        call()
    profiler.disable()
    elapsed = time.perf_counter() - started
    sql_seconds = sum(s[2] for s in statements)
    queries = len(statements) / args.requests

    text = io.StringIO()
    text.write(
        f"{args.requests} requests: {elapsed / args.requests * 1000:.1f} ms each in-process "
        f"(cProfile on, which inflates Python time); SQL {sql_seconds / args.requests * 1000:.1f} ms "
        f"in {queries:.0f} queries per request; {slots} slots per response\n\n"
    )
    text.write("SQL per request by statement (ms, wall time in the driver):\n")
    by_statement: dict[str, float] = {}
    for statement, _, seconds in statements:
        key = re.sub(r"\s+", " ", statement)[:150]
        by_statement[key] = by_statement.get(key, 0.0) + seconds
    for key, seconds in sorted(by_statement.items(), key=lambda kv: -kv[1]):
        text.write(f"  {seconds / args.requests * 1000:7.2f}  {key}\n")
    for sort in ("tottime", "cumulative"):
        text.write(f"\n--- top 30 by {sort} ---\n")
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).strip_dirs().sort_stats(sort).print_stats(30)
        text.write(stream.getvalue())
    OUT.mkdir(exist_ok=True)
    (OUT / "profile.txt").write_text(text.getvalue())

    # Without the profiler: the real in-process cost per request, split into the loader
    # (search._build: the queries and building the engine's input), the engine
    # (find_slots) and the rest (Flask, auth, argument parsing, search() itself, the
    # response schema), by wrapping the two functions for the duration of this loop.
    from booking.services import availability_search as search_module

    phases = {"load": 0.0, "engine": 0.0}
    cpu = {"load": 0.0, "engine": 0.0}  # this process's CPU time: waiting for PostgreSQL is not in it

    def timed(name, function):
        def wrapper(*a, **k):
            begun, begun_cpu = time.perf_counter(), time.process_time()
            try:
                return function(*a, **k)
            finally:
                phases[name] += time.perf_counter() - begun
                cpu[name] += time.process_time() - begun_cpu

        return wrapper

    original = search_module._build, search_module.find_slots
    search_module._build, search_module.find_slots = timed("load", original[0]), timed("engine", original[1])
    statements.clear()
    started, started_cpu = time.perf_counter(), time.process_time()
    try:
        for _ in range(args.requests):
            call()
    finally:
        search_module._build, search_module.find_slots = original
    plain_ms = (time.perf_counter() - started) / args.requests * 1000
    plain_cpu_ms = (time.process_time() - started_cpu) / args.requests * 1000
    breakdown = {name: seconds / args.requests * 1000 for name, seconds in phases.items()}
    breakdown["load_sql"] = sum(s[2] for s in statements) / args.requests * 1000
    breakdown["rest"] = plain_ms - breakdown["load"] - breakdown["engine"]
    breakdown_cpu = {name: seconds / args.requests * 1000 for name, seconds in cpu.items()}
    breakdown_cpu["rest"] = plain_cpu_ms - breakdown_cpu["load"] - breakdown_cpu["engine"]
    text.write(
        "\nWithout cProfile, ms per request: "
        + ", ".join(f"{k} {v:.1f}" for k, v in breakdown.items())
        + f", total {plain_ms:.1f} (load_sql: all SQL of the request, mostly inside load)\n"
    )
    text.write(
        "Of which this process's CPU time: "
        + ", ".join(f"{k} {v:.1f}" for k, v in breakdown_cpu.items())
        + f", total {plain_cpu_ms:.1f} (wall time above also has the waits for PostgreSQL)\n"
    )
    (OUT / "profile.txt").write_text(text.getvalue())

    claim_statement = next((s for s in statements if re.search(r"FROM claims", s[0])), None)
    explain_text, summary, claim_rows, indexes = "", "no claim query captured", None, []
    if claim_statement is not None:
        statement, parameters, _ = claim_statement
        raw = engine.raw_connection()
        try:
            cursor = raw.driver_connection.cursor()
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            explain_text = "\n".join(row[0] for row in cursor.fetchall())
            cursor.execute(statement, parameters)
            claim_rows = len(cursor.fetchall())
        finally:
            raw.close()
        # "Seq Scan on claims", "Index [Only] Scan using ix on claims", "Bitmap Index Scan on ix" (under a
        # "Bitmap Heap Scan on claims": the only table of this query).
        seq = re.search(r"Seq Scan on claims", explain_text) is not None
        on_claims = re.findall(r"(Index(?: Only)? Scan) using (\w+) on claims", explain_text)
        on_claims += re.findall(r"(Bitmap Index Scan) on (\w+)", explain_text)
        if seq:
            on_claims.append(("Seq Scan", "claims"))
        indexes = sorted({index for kind, index in on_claims if kind != "Seq Scan"})
        execution = re.search(r"Execution Time: ([\d.]+) ms", explain_text)
        summary = (
            f"{'a SEQUENTIAL scan' if seq else 'index range scans only'} on claims "
            f"({'; '.join(f'{k} on {i}' for k, i in on_claims) or 'none'}), "
            f"{claim_rows} rows, execution {execution.group(1) if execution else '?'} ms"
        )
        (OUT / "explain.txt").write_text(
            f"-- {meta['db']}: the availability loader's claim query, as sent\n{statement}\n-- parameters\n"
            f"{parameters}\n\n{explain_text}\n"
        )
    result = {
        "db": meta["db"],
        "requests": args.requests,
        "slots": slots,
        "ms_per_request": plain_ms,
        "breakdown_ms": breakdown,
        "cpu_ms_per_request": plain_cpu_ms,
        "breakdown_cpu_ms": breakdown_cpu,
        "ms_per_request_profiled": elapsed / args.requests * 1000,
        "sql_ms_per_request": sql_seconds / args.requests * 1000,
        "queries_per_request": round(queries),
        "claim_rows": claim_rows,
        "explain_summary": summary,
        "claim_query_seq_scan": "SEQUENTIAL" in summary,
        "claim_query_indexes": indexes if claim_statement else [],
    }
    (OUT / "profile.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
