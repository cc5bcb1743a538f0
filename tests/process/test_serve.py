"""`make run`'s process pair (python -m schedulers.serve): gunicorn and the scheduler stop together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from migrations import upgrade

from ..scaffold import ROOT, app_env, free_port, start


def _children(pid: int) -> dict[int, str]:
    """pid -> command line of a process's direct children (from /proc)."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found[int(child)] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


def _wait(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def served(tmp_path):
    url = f"sqlite:///{tmp_path / 'serve.sqlite3'}"
    upgrade(url)
    port = free_port()
    process = start(
        [sys.executable, "-m", "schedulers.serve", "--workers", "1", "--bind", f"127.0.0.1:{port}"],
        env=app_env(url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def up():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        _wait(up, 60, "gunicorn to answer")
        children = _children(process.pid)
        web = next(pid for pid, cmd in children.items() if "gunicorn" in cmd)
        scheduler = next(pid for pid, cmd in children.items() if cmd.rstrip().endswith("-m schedulers"))
        yield process, web, scheduler
    finally:
        if process.poll() is None:
            process.kill()
        for pid in _children(process.pid) if process.poll() is None else ():
            os.kill(pid, signal.SIGKILL)
        process.wait()


def test_sigterm_stops_both(served):
    process, web, scheduler = served
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert not _alive(web) and not _alive(scheduler)


def test_a_dead_scheduler_takes_the_web_server_down_with_it(served):
    """Never a web server without its scheduler: holds would stop expiring unnoticed."""
    process, web, scheduler = served
    os.kill(scheduler, signal.SIGKILL)
    assert process.wait(timeout=30) != 0
    _wait(lambda: not _alive(web), 10, "gunicorn to stop")


def test_the_access_log_of_make_run_never_shows_a_feed_token(tmp_path):
    import json

    url = f"sqlite:///{tmp_path / 'log.sqlite3'}"
    upgrade(url)
    env = app_env(url)
    made = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "create-organization", "Logged"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    key = made.stdout.strip().splitlines()[-1]
    port, log = free_port(), tmp_path / "access.log"
    with log.open("w") as out:
        process = start(
            [sys.executable, "-m", "schedulers.serve", "--workers", "1", "--bind", f"127.0.0.1:{port}", "--access-log"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"

    def call(method, path, body=None, auth=True):
        request = urllib.request.Request(
            base + path,
            method=method,
            data=json.dumps(body).encode() if body else None,
            headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if auth else {})},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()

    def up():
        try:
            return call("GET", "/healthz", auth=False)[0] == 200
        except OSError:
            return False

    try:
        _wait(up, 60, "gunicorn to answer")
        _, clinic = call("POST", "/v1/clinics", {"name": "Soho", "timezone": "Europe/London"})
        _, feed = call("POST", "/v1/calendar-feeds", {"owner_type": "clinic", "owner_id": json.loads(clinic)["id"]})
        feed = json.loads(feed)
        status, calendar = call("GET", feed["url"].removeprefix(base), auth=False)
        assert status == 200 and calendar.startswith(b"BEGIN:VCALENDAR")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    written = log.read_text()
    assert "calendar.ics?token=[redacted]" in written
    assert feed["token"] not in written and key not in written
