"""Scratch PostgreSQL databases and real processes (gunicorn, the scheduler), for tests/ and bench/.

Everything that creates a database on a PostgreSQL server or starts the app as a process goes
through here, so a leftover is named and dropped the same way everywhere and every process
starts from the project root (where gunicorn reads gunicorn.conf.py).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from models import make_engine

ROOT = Path(__file__).resolve().parent.parent


# --- databases ------------------------------------------------------------------------------------


def database_url(url: str, name: str) -> str:
    """`url` pointing at the database `name` on the same server."""
    return sa.make_url(url).set(database=name).render_as_string(hide_password=False)


def create_database(admin_url: str, name: str) -> str:
    """A new empty database `name` (any leftover of that name dropped first); returns its url."""
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return database_url(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def scratch_database(admin_url: str, prefix: str, *, migrate: bool = True, keep: bool = False) -> Iterator[str]:
    """The url of a fresh database on `admin_url`'s server, named `prefix_<pid>_<random>` so parallel
    runs never share one, migrated with Alembic unless migrate=False; dropped afterwards unless keep."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = create_database(admin_url, name)
    try:
        if migrate:
            from migrations import upgrade

            upgrade(url)
        yield url
    finally:
        if not keep:
            drop_database(admin_url, name)


@contextmanager
def fresh_database(backend: str, admin_url: str, folder: Path, prefix: str) -> Iterator[str]:
    """A migrated database of its own on `backend`: a file in `folder` on SQLite, else a scratch database."""
    if backend == "sqlite":
        from migrations import upgrade

        url = f"sqlite:///{folder / f'{prefix}.sqlite3'}"
        upgrade(url)
        yield url
        return
    with scratch_database(admin_url, prefix) as url:
        yield url


# --- processes ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gunicorn_command(
    port: int,
    *,
    workers: int = 2,
    app: str = "wsgi:app",
    timeout: int | None = None,
    python: str | Path = sys.executable,
    options: tuple[str, ...] = (),
) -> list[str]:
    command = [str(python), "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}"]
    if timeout is not None:
        command += ["--timeout", str(timeout)]
    return [*command, *options, app]


SCHEDULER_COMMAND = (sys.executable, "-m", "schedulers")


def app_env(url: str, **more: str) -> dict:
    """The environment of an app process on the database `url`."""
    return {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING", **more}


def start(command, *, env: dict | None = None, cwd: Path = ROOT, **popen) -> subprocess.Popen:
    """Start `command` from the project root (popen: stdout, stderr, start_new_session...)."""
    return subprocess.Popen(list(command), cwd=cwd, env=env, **popen)


def stop(process: subprocess.Popen, timeout: float = 20, *, group: bool = False) -> int:
    """SIGTERM, then SIGKILL after `timeout` seconds (the whole process group if `group`)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
        return process.wait()


def wait_until_answers(
    process: subprocess.Popen,
    answers: Callable[[], bool],
    *,
    timeout: float = 60,
    what: str = "gunicorn",
) -> None:
    """Poll `answers()` (an OSError counts as not yet) until true; fail if the process exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode()[-2000:] if process.stderr else ""
            raise RuntimeError(f"{what} exited during startup {error}".strip())
        try:
            if answers():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer within {timeout:.0f} s")


def healthz(base: str) -> Callable[[], bool]:
    def answers() -> bool:
        with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
            return response.status == 200

    return answers


@contextmanager
def running_gunicorn(url: str, *, workers: int = 2, timeout: int = 60, env: dict | None = None) -> Iterator[str]:
    """gunicorn serving the app on `url` at a free port; yields its base URL; SIGTERM (then SIGKILL) after."""
    port = free_port()
    server = start(
        gunicorn_command(port, workers=workers, timeout=timeout),
        env=app_env(url, **(env or {})),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(server, healthz(base))
        yield base
    finally:
        stop(server)
