"""The README's tour, run as a new user would: on fresh seeds, against `make run`'s processes.

The tour's shell blocks are taken from README.md as they are (only the key comes from the
seed's output instead of instance/demo-api-key), so the README cannot drift from what works.
TOUR_SEEDS (default 1) fresh databases are seeded and toured; each must book Olivia's
microneedling session, refuse a frontend key at 75 seconds' notice (and let the staff key's
override past it, its reason recorded), book Priya's "same time, four weeks later" across
the spring change, hold and confirm Olivia's next two sessions as a course plan, and book
Grace's first session through her booking link as the booking page does, then cancel it
through its manage link (check_the_answers).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from api.cli import demo_key_file, instance_file

from ..scaffold import ROOT, app_env, free_port, healthz, start, stop, wait_until_answers

SEEDS = int(os.environ.get("TOUR_SEEDS", "1"))
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
        check_the_answers(base, key, answers, done.stdout)
    finally:
        stop(server)
        demo_key_file(ROOT / "instance", url).unlink(missing_ok=True)
        instance_file(ROOT / "instance", url, "demo-booking-link").unlink(missing_ok=True)


def check_the_answers(base: str, key: str, answers: list[dict], stdout: str) -> None:
    """Olivia's session books; a frontend key is refused at 75 s notice and the staff key's override
    gets past it with its reason recorded; Priya's course books "same time, four weeks later" across
    the spring change."""
    kinds = {t["id"]: t["name"] for t in _get(base, "/v1/treatment-types", key)["data"]}
    patients = {p["id"]: p["name"] for p in _get(base, "/v1/patients?limit=100", key)["data"]}
    booked = [a for a in answers if a.get("status") == "booked"]
    sessions = [a for a in booked if kinds[a["treatment_type_id"]] == "Microneedling session"]
    olivia = [a for a in sessions if patients[a["patient_id"]] == "Olivia Bennett"]
    assert len(olivia) == 1 and olivia[0]["override_reason"] is None, stdout

    too_soon = [a for a in answers if a.get("code") == "too_soon"]
    assert len(too_soon) == 1 and too_soon[0]["min_notice_minutes"] == 120, stdout
    walk_in = answers[answers.index(too_soon[0]) + 1]
    if walk_in.get("status") == "booked":  # in Dr Okafor's hours
        assert kinds[walk_in["treatment_type_id"]] == "Skin consultation", walk_in
        assert walk_in["override_reason"] == "Walked in; the consulting room is free", walk_in
        assert walk_in["override_key_id"], walk_in
    else:  # outside them: past the notice, stopped by the hours
        assert walk_in.get("code") == "outside_working_hours", walk_in

    course = [a for a in sessions if patients[a["patient_id"]] == "Priya Sharma"]
    assert len(course) == 2, stdout
    first, second = (datetime.fromisoformat(a["starts_at"]) for a in course)
    london = ZoneInfo("Europe/London")
    assert (second.astimezone(london).date() - first.astimezone(london).date()).days == 28, course
    assert first.astimezone(london).time() == second.astimezone(london).time() == time(10), course
    assert second - first == timedelta(days=28, hours=-1), course  # across the spring change: 671 hours
    assert all(a["override_reason"] == "Course planned at the consultation" for a in course), course

    held, confirmed = (next(a for a in answers if a.get("status") == s) for s in ("held", "confirmed"))
    assert held["id"] == confirmed["id"] and held["patient_id"] == olivia[0]["patient_id"], stdout
    assert [s["number"] for s in held["sessions"]] == [2, 3], held
    assert {s["hold"]["source"] for s in held["sessions"]} == {"course_plan"}, held
    starts = [datetime.fromisoformat(s["slot"]["starts_at"]).astimezone(london).date() for s in held["sessions"]]
    first_session = datetime.fromisoformat(olivia[0]["starts_at"]).astimezone(london).date()
    assert (starts[0] - first_session).days >= 28 and 28 <= (starts[1] - starts[0]).days <= 42, held
    booked_plan = [_get(base, f"/v1/appointments/{s['appointment_id']}", key) for s in confirmed["sessions"]]
    assert [a["status"] for a in booked_plan] == ["booked", "booked"], booked_plan
    assert [a["starts_at"] for a in booked_plan] == [s["slot"]["starts_at"] for s in held["sessions"]], booked_plan

    # Grace's booking link: the page's calls book her session as her, and its manage link cancels it.
    greeting = next(a for a in answers if "first_name" in a)
    assert greeting["first_name"] == "Grace" and set(greeting) & {"name", "email", "patient_id"} == set(), greeting
    managed = next(a for a in answers if "changeable_until" in a)
    assert managed["appointment"]["treatment_type_name"] == "Microneedling session", managed
    assert patients[managed["appointment"]["patient_id"]] == "Grace Whitfield", managed
    cancelled = answers[answers.index(managed) + 1]
    assert cancelled["status"] == "cancelled" and cancelled["id"] == managed["appointment"]["id"], cancelled
