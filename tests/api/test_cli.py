"""Command-line tasks: create-organization and the demo seed."""

import sqlalchemy as sa

from api.cli import demo_key_file
from booking.services.demo_seed import DEMO_NAME
from models import Clinic, Organization, Patient, Practitioner, Room, TreatmentType
from models.db import default_database_url

from ..helpers import Caller


def test_create_organization_prints_a_working_admin_key_last(app, client, db):
    result = app.test_cli_runner().invoke(args=["create-organization", "North Chain"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    organization = db.scalar(sa.select(Organization).where(Organization.name == "North Chain"))
    caller = Caller(app, client, token, organization.id)
    assert caller.get("/v1/clinics").status_code == 200
    assert caller.post("/v1/clinics", json={"name": "A", "timezone": "UTC"}).status_code == 201
    assert token not in str(db.execute(sa.text("SELECT * FROM api_keys")).all())


def test_create_organization_refuses_an_empty_name(app, db):
    result = app.test_cli_runner().invoke(args=["create-organization", "  "])
    assert result.exit_code != 0
    assert db.scalar(sa.select(sa.func.count()).select_from(Organization)) == 0


def _seed(app, tmp_path, monkeypatch):
    monkeypatch.setattr(app, "instance_path", str(tmp_path))
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    return result.output.strip().split()[-1]


def test_seed_demo_builds_the_demo_chain_once(app, client, db, tmp_path, monkeypatch):
    token = _seed(app, tmp_path, monkeypatch)
    organization = db.scalar(sa.select(Organization).where(Organization.name == DEMO_NAME))
    caller = Caller(app, client, token, organization.id)

    clinics = caller.get("/v1/clinics").get_json()["data"]
    assert sorted(c["timezone"] for c in clinics) == ["America/New_York", "Europe/London"]
    practitioners = caller.get("/v1/practitioners").get_json()["data"]
    assert len(practitioners) == 4
    assert sum(len(p["clinic_ids"]) == 2 for p in practitioners) == 1
    kinds = sorted(t["kind"] for t in caller.get("/v1/treatment-types").get_json()["data"])
    assert kinds == ["consultation", "microneedling", "review"]
    patients = caller.get("/v1/patients").get_json()["data"]
    assert any(p["contraindications"] for p in patients)
    for clinic in clinics:
        assert caller.get(f"/v1/clinics/{clinic['id']}/rooms").get_json()["data"]

    counts = [
        db.scalar(sa.select(sa.func.count()).select_from(m))
        for m in (Clinic, Room, Practitioner, Patient, TreatmentType)
    ]
    assert _seed(app, tmp_path, monkeypatch) == token, "a second run reuses the saved key"
    assert counts == [
        db.scalar(sa.select(sa.func.count()).select_from(m))
        for m in (Clinic, Room, Practitioner, Patient, TreatmentType)
    ]


def test_seed_demo_issues_a_new_key_when_the_saved_one_is_gone(app, client, db, tmp_path, monkeypatch):
    first = _seed(app, tmp_path, monkeypatch)
    demo_key_file(tmp_path, app.config["DATABASE_URL"]).write_text("nbk_not_a_real_key\n")
    second = _seed(app, tmp_path, monkeypatch)
    assert second != first
    organization = db.scalar(sa.select(Organization).where(Organization.name == DEMO_NAME))
    assert Caller(app, client, second, organization.id).get("/v1/clinics").status_code == 200


def test_seed_demo_leaves_a_database_of_other_organizations_alone(app, admin, db, tmp_path, monkeypatch):
    monkeypatch.setattr(app, "instance_path", str(tmp_path))
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0 and "nothing seeded" in result.output
    assert db.scalar(sa.select(Organization).where(Organization.name == DEMO_NAME)) is None


def test_seeding_another_database_keeps_the_default_databases_key(app, tmp_path, monkeypatch):
    """The key `make run` serves with (instance/demo-api-key) belongs to the embedded database;
    seeding any other database keeps its key beside it, under a name of its own."""
    default = tmp_path / "demo-api-key"
    default.write_text("nbk_the_default_databases_key\n")
    token = _seed(app, tmp_path, monkeypatch)
    assert default.read_text() == "nbk_the_default_databases_key\n"
    own = demo_key_file(tmp_path, app.config["DATABASE_URL"])
    assert own != default and own.read_text().strip() == token
    assert demo_key_file(tmp_path, default_database_url()) == default


def test_seed_demo_makes_the_demo_booking_page(app, client, db, tmp_path, monkeypatch):
    """`make run`'s README link: /book/demo embeds a publishable key of the demo for the served origin."""
    import json

    from api.pages import pages_file

    _seed(app, tmp_path, monkeypatch)
    with app.app_context():
        path = pages_file()
    assert path.parent == tmp_path
    key = json.loads(path.read_text())["demo"]
    assert key.startswith("pk_")
    page = client.get("/book/demo").get_data(as_text=True)
    assert f'<meta name="needlebook-key" content="{key}">' in page
    origin = f"http://127.0.0.1:{app.config['PORT']}"
    answer = client.get("/v1/booking/clinics", headers={"Authorization": f"Bearer {key}", "Origin": origin})
    assert answer.status_code == 200 and len(answer.get_json()["data"]) == 2
    assert answer.headers["Access-Control-Allow-Origin"] == origin
    _seed(app, tmp_path, monkeypatch)
    assert json.loads(path.read_text())["demo"] == key, "a second run keeps the page's key"


def test_seed_demo_prints_a_returning_patients_booking_link_that_books_a_session(
    app, client, db, tmp_path, monkeypatch
):
    """The README's tour: the printed link opens /book/demo as Grace, whose consultation is done,
    so the booking page books her a microneedling session (a new visitor is refused one)."""
    import json
    import re
    from datetime import timedelta

    from api.pages import pages_file
    from booking.domain import clock

    monkeypatch.setattr(app, "instance_path", str(tmp_path))
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    port = app.config["PORT"]
    link = re.search(rf"http://127\.0\.0\.1:{port}/book/demo#invite=(bl_\S+)", result.output)
    assert link, result.output
    token = link.group(1)
    with app.app_context():
        key = json.loads(pages_file().read_text())["demo"]
    origin = f"http://127.0.0.1:{port}"
    page = Caller(app, client, key, None).with_headers({"Origin": origin})
    assert page.get(f"/v1/booking/links/{token}").get_json()["first_name"] == "Grace"
    types = {t["kind"]: t["id"] for t in page.get("/v1/booking/treatment-types").get_json()["data"]}
    london = next(c for c in page.get("/v1/booking/clinics").get_json()["data"] if c["name"] == "London Bridge")
    window = {
        "treatment_type_id": types["microneedling"],
        "clinic_id": london["id"],
        "start": (clock.now() + timedelta(days=2)).isoformat(),
        "end": (clock.now() + timedelta(days=16)).isoformat(),
    }
    visitor = page.get("/v1/availability", query_string=window).get_json()
    assert visitor["data"] == [] and visitor["reason"]["code"] == "consultation_required"
    slot = page.get("/v1/availability", query_string={**window, "patient_token": token}).get_json()["data"][0]
    held = page.post("/v1/booking/holds", json={**slot, "patient_token": token})
    assert held.status_code == 201, held.get_json()
    booked = page.post(
        "/v1/booking/appointments", json={"hold_token": held.get_json()["hold_token"], "patient_token": token}
    )
    assert booked.status_code == 201, booked.get_json()
    cancelled = page.post(f"/v1/manage/{booked.get_json()['manage_token']}/cancel", json={})
    assert cancelled.get_json()["status"] == "cancelled"
    again = app.test_cli_runner().invoke(args=["seed-demo"])
    assert f"#invite={token}" in again.output, "a second run prints the same live link"
