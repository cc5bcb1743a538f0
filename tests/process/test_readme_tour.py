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
import urllib.request

import pytest

from api.cli import demo_key_file

from ..scaffold import ROOT, app_env, free_port, healthz, start, stop, wait_until_answers

SEEDS = int(os.environ.get("TOUR_SEEDS", "2"))
KEY_LINE = "KEY=$(cat instance/demo-api-key)\n"


def tour_script() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## A five-minute tour", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    assert len(blocks) >= 2, "the tour's shell blocks"
    script = "\n".join(blocks)
    assert KEY_LINE in script
    return script


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


def _get(base: str, path: str, key: str) -> dict:
    request = urllib.request.Request(f"{base}{path}", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


@pytest.mark.parametrize("seed", range(SEEDS))
def test_the_readme_tour_books_a_microneedling_session_on_a_fresh_seed(tmp_path, seed):
    url = f"sqlite:///{tmp_path / 'tour.sqlite3'}"
    env = app_env(url)
    _flask(env, "migrate")
    key = _flask(env, "seed-demo").split()[-1]
    port = free_port()
    server = start(
        [sys.executable, "-m", "schedulers.serve", "--workers", "1", "--bind", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(server, healthz(base), what="make run's server")
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", tour_script().replace(KEY_LINE, f"KEY={key}\n")],
            cwd=ROOT,
            env={**env, "PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        answers = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        booked = [answer for answer in answers if "procedure_starts_at" in answer]
        assert len(booked) == 1, done.stdout
        assert booked[0]["status"] == "booked", booked[0]
        assert _get(base, f"/v1/treatment-types/{booked[0]['treatment_type_id']}", key)["kind"] == "microneedling"
    finally:
        stop(server)
        demo_key_file(ROOT / "instance", url).unlink(missing_ok=True)
