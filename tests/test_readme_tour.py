"""The README's tour, run as a new user would: on fresh seeds, against `make run`'s processes.

The tour's shell blocks are taken from README.md as they are (only the key comes from the
seed's output instead of instance/demo-api-key), so the README cannot drift from what works.
TOUR_SEEDS (default 2) fresh databases are seeded and toured; each must book a
microneedling session.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .test_races import _free_port

ROOT = Path(__file__).resolve().parent.parent
SEEDS = int(os.environ.get("TOUR_SEEDS", "2"))


def tour_script() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## A five-minute tour", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    assert len(blocks) >= 2, "the tour's shell blocks"
    script = "\n".join(blocks)
    assert "KEY=$(cat instance/demo-api-key)\n" in script
    return script


def _up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _flask(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("seed", range(SEEDS))
def test_the_readme_tour_books_a_microneedling_session_on_a_fresh_seed(tmp_path, seed):
    url = f"sqlite:///{tmp_path / 'tour.sqlite3'}"
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    _flask(env, "migrate")
    key = _flask(env, "seed-demo").split()[-1]
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "schedulers.serve", "--workers", "1", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not _up(port):
            assert time.monotonic() < deadline and server.poll() is None, "make run's server did not answer"
            time.sleep(0.2)
        script = tour_script().replace("KEY=$(cat instance/demo-api-key)\n", f"KEY={key}\n")
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=ROOT,
            env={**env, "PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        answers = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        booked = [a for a in answers if "procedure_starts_at" in a]
        assert len(booked) == 1, done.stdout
        appointment = booked[0]
        assert appointment["status"] == "booked", appointment
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/treatment-types/{appointment['treatment_type_id']}",
            headers={"Authorization": f"Bearer {key}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response)["kind"] == "microneedling"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        Path(ROOT / "instance").joinpath(_key_file_name(url)).unlink(missing_ok=True)


def _key_file_name(url: str) -> str:
    from api.cli import demo_key_file

    return demo_key_file(Path("."), url).name
