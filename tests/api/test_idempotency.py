"""Idempotency-Key on every POST: a retry replays the first answer and creates nothing.

What was created is counted with SQL through the `db` fixture, not through the API,
so a replay that quietly did the work again would be caught.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from api import idempotency
from booking.domain import clock
from models import Appointment, Clinic, IdempotencyKey, Patient

from ..helpers import assert_problem
from .test_tenancy import ROUTES, call
from .test_tenancy import build_world as build_every_object

PATIENT = {"name": "Ada Lovelace", "email": "ada@example.com"}


def keyed(key: str) -> dict:
    return {"headers": {"Idempotency-Key": key}}


def count(db, model, organization_id: str) -> int:
    return db.scalar(sa.select(sa.func.count()).select_from(model).where(model.organization_id == organization_id))


def stored(db, organization_id: str, key: str) -> IdempotencyKey | None:
    db.expire_all()
    return db.get(IdempotencyKey, (organization_id, key))


def test_a_retry_replays_the_first_answer_and_creates_nothing(admin, db):
    first = admin.post("/v1/patients", json=PATIENT, **keyed("create-ada"))
    again = admin.post("/v1/patients", json=PATIENT, **keyed("create-ada"))
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert count(db, Patient, admin.organization_id) == 1


def test_a_retried_booking_books_once(world, db):
    world.consulted()
    body, key = world.slot(), keyed("book-monday-10")
    first = world.caller.post("/v1/appointments", json=body, **key)
    again = world.caller.post("/v1/appointments", json=body, **key)
    assert first.status_code == again.status_code == 201, again.get_json()
    assert again.get_json()["id"] == first.get_json()["id"]
    assert count(db, Appointment, world.caller.organization_id) == 1


def test_a_retried_cancel_is_replayed_not_refused_as_a_second_cancel(world):
    world.consulted()
    appointment = world.book()
    path, body = f"/v1/appointments/{appointment['id']}/cancel", {"reason": "patient_request"}
    first = world.caller.post(path, json=body, **keyed("cancel-1"))
    again = world.caller.post(path, json=body, **keyed("cancel-1"))
    assert first.status_code == again.status_code == 200
    assert again.get_json() == first.get_json()
    # Without the key the second cancel really runs, and a cancelled appointment cannot be cancelled.
    assert_problem(world.caller.post(path, json=body), 409, "invalid_transition")


def test_the_same_key_with_another_body_is_refused_and_creates_nothing(admin, db):
    assert admin.post("/v1/patients", json=PATIENT, **keyed("k1")).status_code == 201
    other_body = admin.post("/v1/patients", json={**PATIENT, "name": "Grace Hopper"}, **keyed("k1"))
    body = assert_problem(other_body, 422, "idempotency_key_reused")
    assert "new key" in body["detail"]
    other_path = admin.post("/v1/clinics", json={"name": "Soho", "timezone": "Europe/London"}, **keyed("k1"))
    assert_problem(other_path, 422, "idempotency_key_reused")
    assert count(db, Patient, admin.organization_id) == 1
    assert count(db, Clinic, admin.organization_id) == 0


def test_the_query_string_is_part_of_the_request(admin, db):
    assert admin.post("/v1/patients", json=PATIENT, **keyed("q")).status_code == 201
    assert_problem(admin.post("/v1/patients?x=1", json=PATIENT, **keyed("q")), 422, "idempotency_key_reused")


def test_keys_belong_to_one_organization(admin, other, db):
    mine = admin.post("/v1/clinics", json={"name": "Soho", "timezone": "Europe/London"}, **keyed("clinic-1"))
    theirs = other.post("/v1/clinics", json={"name": "Leeds", "timezone": "Europe/London"}, **keyed("clinic-1"))
    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert theirs.get_json()["name"] == "Leeds" and theirs.get_json()["id"] != mine.get_json()["id"]
    assert count(db, Clinic, admin.organization_id) == count(db, Clinic, other.organization_id) == 1


def test_a_failed_validation_is_replayed_too(admin, db):
    invalid = {"name": ""}
    first = admin.post("/v1/patients", json=invalid, **keyed("bad"))
    again = admin.post("/v1/patients", json=invalid, **keyed("bad"))
    assert_problem(first, 422, "validation_error")
    assert_problem(again, 422, "validation_error")
    assert again.headers["Idempotent-Replayed"] == "true"
    assert {k: v for k, v in again.get_json().items() if k != "request_id"} == {
        k: v for k, v in first.get_json().items() if k != "request_id"
    }
    assert again.mimetype == "application/problem+json"
    # The corrected request is another request: it needs another key.
    assert_problem(admin.post("/v1/patients", json=PATIENT, **keyed("bad")), 422, "idempotency_key_reused")
    assert count(db, Patient, admin.organization_id) == 0


def test_a_retry_while_the_first_is_in_flight_is_a_409(admin, db):
    assert admin.post("/v1/patients", json=PATIENT, **keyed("slow")).status_code == 201
    # As if the first request were still running: its claim is there, its answer is not.
    db.execute(
        sa.update(IdempotencyKey)
        .where(IdempotencyKey.key == "slow")
        .values(status="in_flight", response_status=None, response_body=None, response_headers=None)
    )
    db.commit()
    retry = admin.post("/v1/patients", json=PATIENT, **keyed("slow"))
    assert_problem(retry, 409, "idempotency_key_in_flight")
    assert int(retry.headers["Retry-After"]) >= 1
    assert count(db, Patient, admin.organization_id) == 1


def test_a_claim_abandoned_by_a_dead_worker_is_taken_over(admin, db):
    assert admin.post("/v1/patients", json=PATIENT, **keyed("orphan")).status_code == 201
    db.execute(
        sa.update(IdempotencyKey)
        .where(IdempotencyKey.key == "orphan")
        .values(
            status="in_flight",
            response_status=None,
            response_body=None,
            response_headers=None,
            created_at=clock.now() - idempotency.ABANDONED_AFTER - timedelta(seconds=1),
        )
    )
    db.commit()
    retry = admin.post("/v1/patients", json=PATIENT, **keyed("orphan"))
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry.headers
    assert stored(db, admin.organization_id, "orphan").status == "done"


def test_an_expired_key_can_be_used_again(admin, db):
    assert admin.post("/v1/patients", json=PATIENT, **keyed("old")).status_code == 201
    row = stored(db, admin.organization_id, "old")
    assert row.status == "done" and row.expires_at - row.created_at >= timedelta(hours=24)
    db.execute(
        sa.update(IdempotencyKey)
        .where(IdempotencyKey.key == "old")
        .values(expires_at=clock.now() - timedelta(seconds=1))
    )
    db.commit()
    reused = admin.post("/v1/patients", json={**PATIENT, "name": "Grace Hopper"}, **keyed("old"))
    assert reused.status_code == 201 and "Idempotent-Replayed" not in reused.headers
    assert reused.get_json()["name"] == "Grace Hopper"
    assert count(db, Patient, admin.organization_id) == 2
    assert stored(db, admin.organization_id, "old").expires_at > clock.now() + timedelta(hours=23)


def test_expired_keys_are_cleaned_up_along_the_way(admin, other, db, monkeypatch):
    for caller in (admin, other):
        assert caller.post("/v1/patients", json=PATIENT, **keyed("stale")).status_code == 201
    db.execute(sa.update(IdempotencyKey).values(expires_at=clock.now() - timedelta(hours=1)))
    db.commit()
    monkeypatch.setattr(idempotency, "CLEANUP_RATE", 1.0)
    assert admin.post("/v1/patients", json=PATIENT, **keyed("fresh")).status_code == 201
    db.expire_all()
    assert set(db.scalars(sa.select(IdempotencyKey.key))) == {"fresh"}


def test_a_server_error_releases_the_key_so_a_retry_runs(admin, db, monkeypatch):
    from booking.services import clinics

    real_apply = clinics._apply
    monkeypatch.setattr(clinics, "_apply", lambda *a, **k: 1 / 0)
    body = {"name": "Soho", "timezone": "Europe/London"}
    assert_problem(admin.post("/v1/clinics", json=body, **keyed("flaky")), 500, "internal_error")
    assert stored(db, admin.organization_id, "flaky") is None
    monkeypatch.setattr(clinics, "_apply", real_apply)
    retry = admin.post("/v1/clinics", json=body, **keyed("flaky"))
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry.headers
    assert count(db, Clinic, admin.organization_id) == 1


def test_unauthenticated_and_forbidden_requests_leave_the_key_alone(admin, client, db):
    reader = admin.with_scopes("read")
    assert_problem(reader.post("/v1/patients", json=PATIENT, **keyed("k")), 403, "forbidden")
    anonymous = client.post("/v1/patients", json=PATIENT, headers={"Idempotency-Key": "k"})
    assert_problem(anonymous, 401, "unauthorized")
    assert stored(db, admin.organization_id, "k") is None
    assert admin.post("/v1/patients", json=PATIENT, **keyed("k")).status_code == 201


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "caf\u00e9"])
def test_a_malformed_key_is_a_validation_error_naming_the_header(admin, db, key):
    response = admin.post(
        "/v1/patients", json=PATIENT, headers={"Idempotency-Key": key.encode("utf-8").decode("latin-1")}
    )
    body = assert_problem(response, 422, "validation_error")
    assert "Idempotency-Key" in body["errors"]
    assert count(db, Patient, admin.organization_id) == 0


def test_the_longest_allowed_key_works(admin):
    key = "~" * 255
    assert admin.post("/v1/patients", json=PATIENT, **keyed(key)).status_code == 201
    assert admin.post("/v1/patients", json=PATIENT, **keyed(key)).headers["Idempotent-Replayed"] == "true"


POSTS = [rule for method, rule in ROUTES if method == "POST"]


@pytest.mark.parametrize("rule", POSTS)
def test_every_post_replays_a_retry(admin, rule, db):
    """Whatever the first answer was (201, or a 409 for a lifecycle step out of order), the retry
    gets it again, and the number of objects of every kind is what the first left."""
    ids = build_every_object(admin)
    keyed_admin = admin.with_headers(keyed("every-post")["headers"])
    first = call(keyed_admin, "POST", rule, ids)
    tables = {
        t: db.scalar(sa.text(f"SELECT count(*) FROM {t}"))
        for t in (
            "clinics",
            "rooms",
            "patients",
            "appointments",
            "holds",
            "claims",
            "courses",
            "past_sessions",
            "time_off",
            "api_keys",
            "treatment_types",
            "webhook_subscriptions",
            "outbox_events",
        )
    }
    again = call(keyed_admin, "POST", rule, ids)
    assert first.status_code < 500, first.get_json()
    assert again.status_code == first.status_code and again.headers["Idempotent-Replayed"] == "true"
    withheld = {**{path: fields for path, _, fields in SECRET_CREATING}, **SECRET_ROTATING, **TOKEN_SHOWING}.get(rule)
    if withheld and first.status_code in (200, 201):  # the secret is shown once, never replayed
        assert again.get_json() == {**first.get_json(), **dict.fromkeys(withheld), "secret_withheld": True}
    else:
        assert again.get_data() == first.get_data()
    assert tables == {t: db.scalar(sa.text(f"SELECT count(*) FROM {t}")) for t in tables}


def test_every_post_documents_the_key_and_its_answers(client):
    spec = client.get("/openapi.json").get_json()
    assert spec["components"]["parameters"]["IdempotencyKey"]["name"] == "Idempotency-Key"
    for path, operations in spec["paths"].items():
        post = operations.get("post")
        if post is None or not path.startswith("/v1"):
            continue
        assert {"$ref": "#/components/parameters/IdempotencyKey"} in post["parameters"], path
        assert {"409", "422"} <= post["responses"].keys(), path


class Killed(BaseException):
    """A worker killed at that very instant: nothing after it runs, no handler sees it."""


def _kill_after_committing(app, model, connection):
    """Kill the worker right after the first commit that wrote a `model` row: nothing the worker
    would do after that commit (another statement, or the end of the request) happens."""
    from sqlalchemy import event

    maker, state = app.extensions["db_write_sessions"], {}
    plain = maker.class_
    idempotency.CLEANUP_RATE, cleanup_rate = 0.0, idempotency.CLEANUP_RATE  # no chance clean-up statement

    class Committing(plain):
        def commit(self):
            wrote = any(isinstance(obj, model) for obj in self.new) or self.info.pop("wrote", False)
            super().commit()
            if wrote:
                state["dead"] = True

    def note(session, _context, _instances=None):
        if any(isinstance(obj, model) for obj in session.new):
            session.info["wrote"] = True

    def die(*_args, **_kwargs):
        if state.pop("dead", False):
            raise Killed

    def die_at_the_end(response):
        die()
        return response

    maker.class_ = Committing
    event.listen(Committing, "before_flush", note)
    event.listen(connection, "before_cursor_execute", die)
    app.after_request_funcs.setdefault(None, []).insert(0, die_at_the_end)  # runs after every other hook

    def undo():
        idempotency.CLEANUP_RATE = cleanup_rate
        maker.class_ = plain
        event.remove(Committing, "before_flush", note)
        event.remove(connection, "before_cursor_execute", die)
        app.after_request_funcs[None].remove(die_at_the_end)

    return undo


def _as_if_later(db, key: str) -> None:
    """Move a claim back past ABANDONED_AFTER, as if the retry came minutes later."""
    row = stored(db, db.scalar(sa.select(IdempotencyKey.organization_id).where(IdempotencyKey.key == key)), key)
    row.created_at -= idempotency.ABANDONED_AFTER + timedelta(seconds=1)
    db.commit()


def test_a_worker_killed_after_its_booking_committed_is_answered_by_a_replay_not_a_second_run(
    world, app, db, connection
):
    world.consulted()
    body, key = world.slot(), keyed("book-then-die")
    undo = _kill_after_committing(app, Appointment, connection)
    with pytest.raises(Killed):
        world.caller.post("/v1/appointments", json=body, **key)
    undo()
    assert count(db, Appointment, world.caller.organization_id) == 1
    _as_if_later(db, "book-then-die")
    retry = world.caller.post("/v1/appointments", json=body, **key)
    assert retry.status_code == 201, retry.get_json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert count(db, Appointment, world.caller.organization_id) == 1


def test_a_worker_killed_after_creating_a_patient_does_not_create_it_twice(admin, app, db, connection):
    undo = _kill_after_committing(app, Patient, connection)
    with pytest.raises(Killed):
        admin.post("/v1/patients", json=PATIENT, **keyed("patient-then-die"))
    undo()
    _as_if_later(db, "patient-then-die")
    retry = admin.post("/v1/patients", json=PATIENT, **keyed("patient-then-die"))
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert count(db, Patient, admin.organization_id) == 1


def test_a_request_whose_claim_was_taken_over_meanwhile_commits_nothing(admin, db, monkeypatch):
    """A request slower than ABANDONED_AFTER may have been taken over by a retry: it must not commit too."""
    from api import db as request_db
    from booking.services import patient_records

    real_apply = patient_records._apply

    def slow_apply(patient, data):
        # Meanwhile a retry took the claim over (it writes its own claim time).
        request_db.session().execute(
            sa.update(IdempotencyKey)
            .where(IdempotencyKey.key == "slow-one")
            .values(created_at=clock.now() + timedelta(seconds=5))
        )
        return real_apply(patient, data)

    monkeypatch.setattr(patient_records, "_apply", slow_apply)
    answer = admin.post("/v1/patients", json=PATIENT, **keyed("slow-one"))
    assert_problem(answer, 409, "idempotency_key_in_flight")
    assert count(db, Patient, admin.organization_id) == 0


# Not a creation, but a new secret shown once all the same.
SECRET_ROTATING = {"/v1/webhooks/<webhook_id>/rotate-secret": ("secret",)}
# Answers that show a hold token or a patient's manage link token (stored as digests only).
TOKEN_SHOWING = {
    "/v1/appointments": ("manage_token",),
    "/v1/booking/holds": ("hold_token",),
    "/v1/booking/appointments": ("manage_token",),
    "/v1/manage/<token>/reschedule": ("manage_token",),
    "/v1/patients/<patient_id>/booking-links": ("secret", "url"),
}

SECRET_CREATING = [
    ("/v1/api-keys", lambda ids: {"name": "frontend", "scopes": ["read"]}, ("secret", "key")),
    (
        "/v1/webhooks",
        lambda ids: {"url": "https://example.com/hook", "event_types": ["appointment.created"]},
        ("secret",),
    ),
    (
        "/v1/calendar-feeds",
        lambda ids: {"owner_type": "clinic", "owner_id": ids["clinic"]},
        ("secret", "token", "url"),
    ),
]


@pytest.mark.parametrize("path, body, fields", SECRET_CREATING, ids=[p for p, _, _ in SECRET_CREATING])
def test_a_replay_of_a_secret_creating_post_answers_without_the_secret(admin, db, path, body, fields, monkeypatch):
    import socket

    # example.com must resolve to a public address without a network.
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [(2, 1, 6, "", ("93.184.216.34", 443))])
    clinic = admin.post("/v1/clinics", json={"name": "Soho", "timezone": "Europe/London"}).get_json()
    first = admin.post(path, json=body({"clinic": clinic["id"]}), **keyed("secret-1"))
    assert first.status_code == 201, first.get_json()
    secrets = [first.get_json()[f] for f in fields]
    assert all(secrets) and "secret_withheld" not in first.get_json()
    if path == "/v1/api-keys":  # even once revoked
        assert admin.delete(f"/v1/api-keys/{first.get_json()['id']}").status_code == 204
    again = admin.post(path, json=body({"clinic": clinic["id"]}), **keyed("secret-1"))
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    replayed = again.get_json()
    assert replayed["secret_withheld"] is True
    assert all(replayed[f] is None for f in fields)
    assert replayed["id"] == first.get_json()["id"]
    stored_body = stored(db, admin.organization_id, "secret-1").response_body
    token = first.get_json()[fields[0]]
    assert token not in stored_body and token.split("_", 1)[-1] not in stored_body


# The older names of the one-time secret, kept beside `secret` (marked deprecated) for integrations.
DEPRECATED_SECRET_NAMES = {"/v1/api-keys": "key", "/v1/calendar-feeds": "token"}


@pytest.mark.parametrize("path, body, fields", SECRET_CREATING, ids=[p for p, _, _ in SECRET_CREATING])
def test_the_one_time_secret_is_called_secret_everywhere(admin, path, body, fields, monkeypatch):
    import socket

    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [(2, 1, 6, "", ("93.184.216.34", 443))])
    clinic = admin.post("/v1/clinics", json={"name": "Soho", "timezone": "Europe/London"}).get_json()
    answer = admin.post(path, json=body({"clinic": clinic["id"]})).get_json()
    assert answer["secret"]
    if path in DEPRECATED_SECRET_NAMES:
        assert answer[DEPRECATED_SECRET_NAMES[path]] == answer["secret"]
    if path == "/v1/calendar-feeds":
        assert answer["url"].endswith(f"token={answer['secret']}")
    if path == "/v1/api-keys":
        assert admin.with_headers({"Authorization": f"Bearer {answer['secret']}"}).get("/v1/clinics").status_code == 200


def test_the_document_names_the_secret_secret_and_marks_the_old_names_deprecated(client):
    spec = client.get("/openapi.json").get_json()
    for path in ("/v1/api-keys", "/v1/calendar-feeds", "/v1/webhooks"):
        ref = spec["paths"][path]["post"]["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
        properties = spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]["properties"]
        assert "secret" in properties and not properties["secret"].get("deprecated")
        old = DEPRECATED_SECRET_NAMES.get(path)
        if old:
            assert properties[old]["deprecated"] is True and "`secret`" in properties[old]["description"]
