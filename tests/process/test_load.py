"""The load harness (bench/load.py), short: real processes, 100 clients, SIGKILLs, then the SQL checks.

On PostgreSQL two gunicorn nodes, two schedulers and 100 clients for 15 s, one node and the
lease-holding scheduler SIGKILLed and restarted; on SQLite one node and 60 clients for 8 s, the
lease holder SIGKILLed. Every
check of the harness must hold: no overlapping claims, no sessions closer than the interval, every
acknowledged booking present, nothing proposed, recorded or delivered twice, every course plan whole
(held, confirmed, released or expired with all its holds), the waitlist's offers (one live offer per
entry, no slot offered to two entries at once, each offer's hold on its entry's terms and in time,
every fulfilled entry booked), no 5xx and no failed connection outside the killed node's window.
`make load` is the long version.
"""

from __future__ import annotations

from bench import load


def test_under_load_and_faults_nothing_overlaps_is_lost_or_happens_twice(backend, tmp_path):
    name, url = backend
    postgresql = name == "postgresql"
    # Fewer clients on SQLite's one node: the same proof, with a shorter queue to wait out at the end.
    options = load.Options(
        backend=name,
        admin_url=url,
        duration=15 if postgresql else 8,
        clients=100 if postgresql else 60,
        patients=60,
        past_sessions=12,
        nodes=2 if postgresql else 1,
        kill_node=postgresql,
        kill_scheduler=True,
        out=tmp_path / "load.md",
        logs=tmp_path / "logs",
    )

    result = load.run(options)

    assert result.passed, result.text
    by_name = {check.name: check for check in result.checks}
    assert all(check.ok for check in by_name.values())
    assert "the standby took the lease over" in by_name
