"""Webhooks: subscriptions, signed delivery to a real HTTP receiver on loopback, retries, 410.

The delivery job runs in-process against the test's transaction (as in
tests/services/test_follow_ups.py); the receiver is a real HTTP server on 127.0.0.1 whose
answers each test scripts. Signatures are verified with the `standardwebhooks`
package, as a receiver would.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from random import Random

import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook

from booking.domain.errors import InvalidInput
from booking.integrations import webhooks
from models import WebhookDelivery
from schedulers import jobs
from schedulers.config import SchedulerSettings

from ..helpers import assert_problem
from ..services.test_net import HEADER_TRICKLE, Trickler

HOLDER = "test-webhooks"


class Receiver:
    """An HTTP server on loopback answering scripted (status, headers) in turn, then 200."""

    def __init__(self):
        self.requests: list[dict] = []
        self.script: list[tuple[int, dict]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body, "path": self.path})
                status, headers = receiver.script.pop(0) if receiver.script else (200, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/needlebook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def private_allowed(app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOKS_ALLOW_PRIVATE", True)


class Serialized:
    """The test's sessionmaker, one transaction at a time: the send workers record outcomes from
    their own threads, and here every session shares the test's one connection."""

    def __init__(self, sessions):
        self.sessions, self.lock = sessions, threading.Lock()

    @contextmanager
    def __call__(self):
        with self.lock, self.sessions() as db:
            yield db


@pytest.fixture
def deliver(app):
    """Run the scheduler's webhook job once, as the lease holder, and wait for its sends to be
    recorded; returns how many were delivered."""
    settings = SchedulerSettings(database_url="unused", webhooks_allow_private=True)
    run = jobs.register(HOLDER, settings, sessions=Serialized(app.extensions["db_write_sessions"]))

    def deliver_once():
        jobs.keep_lease(HOLDER)
        before = run.sender.delivered
        jobs.deliver_webhooks(HOLDER)
        assert run.sender.wait_idle(timeout=20), "a send to the test's receiver did not finish"
        return run.sender.delivered - before

    yield deliver_once
    jobs.unregister(HOLDER)


def subscribe(caller, url: str, types=("appointment.created",), status=201) -> dict:
    response = caller.post("/v1/webhooks", json={"url": url, "event_types": list(types)})
    assert response.status_code == status, response.get_json()
    return response.get_json()


def deliveries(caller, webhook_id: str) -> list[dict]:
    response = caller.get(f"/v1/webhooks/{webhook_id}/deliveries")
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


def test_a_signed_event_reaches_the_receiver_and_a_500_is_retried(world, receiver, private_allowed, deliver, db):
    hook = subscribe(world.caller, receiver.url)
    assert hook["secret"].startswith("whsec_")
    # Kept sealed, never in clear: signing below still works with it.
    stored = db.scalar(sa.text("SELECT secret FROM webhook_subscriptions WHERE id = :id"), {"id": hook["id"]})
    assert stored.startswith("fernet:") and hook["secret"] not in stored and hook["secret"][6:] not in stored
    receiver.script = [(500, {})]
    world.consulted()
    appointment = world.book(starts_at=world.at(2))

    assert deliver() == 0  # the receiver answered 500
    [first] = receiver.requests
    event = Webhook(hook["secret"]).verify(first["body"], first["headers"])
    assert event["type"] == "appointment.created"
    assert event["data"]["appointment"]["id"] == appointment["id"]
    [logged] = deliveries(world.caller, hook["id"])
    assert logged["status"] == "pending" and logged["last_status_code"] == 500 and logged["attempts"] == 1

    assert deliver() == 0 and len(receiver.requests) == 1  # not due yet: backoff
    world.clock.advance(minutes=1)
    assert deliver() == 1
    second = receiver.requests[1]
    assert Webhook(hook["secret"]).verify(second["body"], second["headers"]) == event
    assert second["headers"]["webhook-id"] == first["headers"]["webhook-id"] == logged["event_id"]
    [done] = deliveries(world.caller, hook["id"])
    assert done["status"] == "delivered" and [a["status_code"] for a in done["attempt_log"]] == [500, 200]
    world.clock.advance(days=1)
    assert deliver() == 0 and len(receiver.requests) == 2  # delivered once, never again


def test_a_tampered_body_fails_verification(world, receiver, private_allowed, deliver):
    hook = subscribe(world.caller, receiver.url)
    world.consulted()
    world.book(starts_at=world.at(2))
    deliver()
    [request] = receiver.requests
    from standardwebhooks.webhooks import WebhookVerificationError

    with pytest.raises(WebhookVerificationError):
        Webhook(hook["secret"]).verify(request["body"].replace(b"appointment", b"appointmenT"), request["headers"])
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.new_secret()).verify(request["body"], request["headers"])


def test_only_subscribed_types_of_the_own_organization_after_subscribing(
    world, other, receiver, private_allowed, deliver
):
    world.consulted()
    before = world.book(starts_at=world.at(1))  # before the subscription: not sent
    subscribe(world.caller, receiver.url, types=["appointment.cancelled"])
    subscribe(other, receiver.url, types=["appointment.created", "appointment.cancelled"])
    world.caller.post(f"/v1/appointments/{before['id']}/cancel", json={"reason": "patient_request"})
    deliver()
    [request] = receiver.requests
    body = json.loads(request["body"])
    assert body["type"] == "appointment.cancelled" and body["data"]["appointment"]["id"] == before["id"]


def test_410_disables_the_subscription(world, receiver, private_allowed, deliver):
    hook = subscribe(world.caller, receiver.url, types=["appointment.created", "appointment.cancelled"])
    receiver.script = [(410, {})]
    world.consulted()
    appointment = world.book(starts_at=world.at(2))
    deliver()
    world.caller.post(f"/v1/appointments/{appointment['id']}/cancel", json={"reason": "patient_request"})
    world.clock.advance(hours=1)
    deliver()
    assert len(receiver.requests) == 1
    shown = world.caller.get(f"/v1/webhooks/{hook['id']}").get_json()
    assert shown["status"] == "disabled" and "410" in shown["disabled_reason"]
    assert "secret" not in shown
    assert [d["status"] for d in deliveries(world.caller, hook["id"])] == ["failed"]


def test_retry_after_is_honoured(world, receiver, private_allowed, deliver, db):
    hook = subscribe(world.caller, receiver.url)
    receiver.script = [(503, {"Retry-After": "3600"})]
    world.consulted()
    world.book(starts_at=world.at(2))
    sent_at = world.clock.now
    deliver()
    delivery = db.scalar(sa.select(WebhookDelivery))
    assert delivery.next_attempt_at == sent_at + timedelta(seconds=3600)
    world.clock.advance(minutes=59)
    deliver()
    assert len(receiver.requests) == 1
    world.clock.advance(minutes=2)
    deliver()
    assert len(receiver.requests) == 2
    assert deliveries(world.caller, hook["id"])[0]["status"] == "delivered"


def test_a_receiver_that_never_answers_2xx_is_given_up_after_about_three_days(
    world, receiver, private_allowed, deliver
):
    hook = subscribe(world.caller, receiver.url)
    receiver.script = [(500, {})] * 100
    world.consulted()
    world.book(starts_at=world.at(2))
    start = world.clock.now
    deliver()
    while deliveries(world.caller, hook["id"])[0]["status"] == "pending":
        world.clock.advance(minutes=30)
        deliver()
        assert world.clock.now - start < timedelta(days=4)
    [delivery] = deliveries(world.caller, hook["id"])
    assert delivery["status"] == "failed"
    assert timedelta(days=2) < world.clock.now - start < timedelta(days=3, hours=13)
    assert 8 <= delivery["attempts"] == len(receiver.requests) <= 16


def test_redirects_are_not_followed(world, receiver, private_allowed, deliver):
    hook = subscribe(world.caller, receiver.url)
    receiver.script = [(302, {"Location": "http://169.254.169.254/latest/meta-data"})]
    world.consulted()
    world.book(starts_at=world.at(2))
    deliver()
    [delivery] = deliveries(world.caller, hook["id"])
    assert delivery["status"] == "pending" and delivery["last_status_code"] == 302
    assert len(receiver.requests) == 1


def test_a_receiver_that_trickles_its_answer_is_cut_off_at_the_send_deadline_and_retried(
    world, private_allowed, deliver, monkeypatch
):
    monkeypatch.setattr(webhooks, "SEND_DEADLINE", 1.5, raising=False)
    slow = Trickler(HEADER_TRICKLE)  # a real server on loopback: "HTTP/1.1 200 OK", then a byte per 0.5 s
    try:
        hook = subscribe(world.caller, slow.url)
        world.consulted()
        world.book(starts_at=world.at(2))
        started = time.monotonic()
        assert deliver() == 0
        assert time.monotonic() - started < 1.5 + 1.5  # the deadline, plus the job's own database work
    finally:
        slow.close()
    [delivery] = deliveries(world.caller, hook["id"])
    assert delivery["status"] == "pending" and delivery["last_status_code"] is None
    assert delivery["last_error"] == "The request took longer than 1.5 s."


def test_deleting_a_subscription_cancels_what_is_pending(world, receiver, private_allowed, deliver):
    hook = subscribe(world.caller, receiver.url)
    receiver.script = [(500, {})]
    world.consulted()
    world.book(starts_at=world.at(2))
    deliver()
    assert world.caller.delete(f"/v1/webhooks/{hook['id']}").status_code == 204
    world.clock.advance(hours=1)
    deliver()
    assert len(receiver.requests) == 1
    assert world.caller.get(f"/v1/webhooks/{hook['id']}").status_code == 404
    assert world.caller.get("/v1/webhooks").get_json()["data"] == []


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "http://user:pw@example.com/",
        "not a url",
    ],
)
def test_only_http_urls(admin, url):
    assert_problem(
        admin.post("/v1/webhooks", json={"url": url, "event_types": ["appointment.created"]}), 422, "validation_error"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://0.0.0.0/",
        "http://[64:ff9b::7f00:1]/hook",
        "http://[2002:a01:203::1]/hook",
        "http://[::ffff:192.168.0.10]/hook",
    ],
)
def test_private_and_loopback_receivers_are_refused_by_default(admin, url):
    response = admin.post("/v1/webhooks", json={"url": url, "event_types": ["appointment.created"]})
    assert_problem(response, 422, "validation_error")
    assert "url" in response.get_json()["errors"]


def test_a_public_address_is_accepted():
    webhooks.check_url("https://93.184.215.14/hooks", allow_private=False)
    with pytest.raises(InvalidInput):
        webhooks.check_url("https://10.0.0.1/hooks", allow_private=False)


def test_unknown_event_types_are_refused(admin):
    response = admin.post("/v1/webhooks", json={"url": "https://93.184.215.14/", "event_types": ["appointment.eaten"]})
    assert_problem(response, 422, "validation_error")


def test_webhooks_need_the_admin_scope(admin, receiver):
    booker = admin.with_scopes("read", "book")
    assert_problem(
        booker.post("/v1/webhooks", json={"url": receiver.url, "event_types": ["hold.expired"]}), 403, "forbidden"
    )


def test_backoff_grows_to_a_cap_with_jitter():
    rng = Random(7)
    waits = [webhooks.backoff(n, rng) for n in range(1, 12)]
    assert timedelta(seconds=24) <= waits[0] <= timedelta(seconds=36)
    assert all(later > earlier for earlier, later in pairwise(waits[:6]))
    assert all(timedelta(hours=9, minutes=36) <= w <= timedelta(hours=14, minutes=24) for w in waits[7:])
    assert len({webhooks.backoff(3, Random(seed)) for seed in range(10)}) > 1  # jittered


def test_a_patch_changes_the_url_and_event_types_and_one_that_changes_nothing_keeps_the_version(
    world, private_allowed, deliver
):
    first, second = Receiver(), Receiver()
    try:
        hook = subscribe(world.caller, first.url, types=["appointment.cancelled"])
        path = f"/v1/webhooks/{hook['id']}"
        tag = world.caller.get(path).headers["ETag"]
        same = world.caller.patch(path, json={"url": first.url, "event_types": ["appointment.cancelled"]})
        assert same.status_code == 200 and same.headers["ETag"] == tag  # nothing changed: no new version

        changed = world.caller.patch(
            path,
            json={"url": second.url, "event_types": ["appointment.created"], "description": "EHR bridge"},
            headers={"If-Match": tag},
        )
        assert changed.status_code == 200, changed.get_json()
        shown = changed.get_json()
        assert shown["url"] == second.url and shown["event_types"] == ["appointment.created"]
        assert shown["description"] == "EHR bridge" and changed.headers["ETag"] != tag
        assert_problem(
            world.caller.patch(path, json={"description": "x"}, headers={"If-Match": tag}), 412, "precondition_failed"
        )

        world.consulted()
        world.book(starts_at=world.at(2))
        assert deliver() == 1
        assert first.requests == [] and len(second.requests) == 1
        assert json.loads(second.requests[0]["body"])["type"] == "appointment.created"
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://169.254.169.254/latest/meta-data", "ftp://x.org/"])
def test_a_patched_url_is_checked_as_on_subscribing(admin, url):
    hook = subscribe(admin, "https://93.184.215.14/hooks")
    response = admin.patch(f"/v1/webhooks/{hook['id']}", json={"url": url})
    assert "url" in assert_problem(response, 422, "validation_error")["errors"]
    assert admin.get(f"/v1/webhooks/{hook['id']}").get_json()["url"] == "https://93.184.215.14/hooks"
    unknown = admin.patch(f"/v1/webhooks/{hook['id']}", json={"event_types": ["appointment.eaten"]})
    assert_problem(unknown, 422, "validation_error")


def test_a_patch_of_another_organizations_webhook_is_a_404(admin, other):
    hook = subscribe(admin, "https://93.184.215.14/hooks")
    assert_problem(other.patch(f"/v1/webhooks/{hook['id']}", json={"description": "x"}), 404, "not_found")


def test_a_rotated_secret_and_the_old_one_both_verify_during_the_grace_period_then_only_the_new(
    world, receiver, private_allowed, deliver, db
):
    hook = subscribe(world.caller, receiver.url, types=["appointment.created", "appointment.cancelled"])
    old = hook["secret"]
    rotated = world.caller.post(f"/v1/webhooks/{hook['id']}/rotate-secret", headers={"Idempotency-Key": "rot-1"})
    assert rotated.status_code == 200, rotated.get_json()
    new = rotated.get_json()["secret"]
    assert new.startswith("whsec_") and new != old
    expires = datetime.fromisoformat(rotated.get_json()["previous_secret_expires_at"])
    assert expires == world.clock.now + timedelta(hours=24)
    stale = world.caller.post(f"/v1/webhooks/{hook['id']}/rotate-secret", headers={"If-Match": f'"{hook["id"]}.1"'})
    assert_problem(stale, 412, "precondition_failed")
    replay = world.caller.post(f"/v1/webhooks/{hook['id']}/rotate-secret", headers={"Idempotency-Key": "rot-1"})
    assert replay.get_json()["secret"] is None and replay.get_json()["secret_withheld"] is True
    assert "secret" not in world.caller.get(f"/v1/webhooks/{hook['id']}").get_json()
    # Both kept sealed, never in clear.
    stored = db.execute(
        sa.text("SELECT secret, previous_secret FROM webhook_subscriptions WHERE id = :id"), {"id": hook["id"]}
    ).one()
    assert all(s.startswith("fernet:") for s in stored)
    assert not any(secret[6:] in s for secret in (old, new) for s in stored)

    world.consulted()
    appointment = world.book(starts_at=world.at(2))
    world.clock.advance(hours=23)
    deliver()
    [during] = receiver.requests
    assert len(during["headers"]["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(during["body"], during["headers"]) == Webhook(new).verify(
        during["body"], during["headers"]
    )

    world.clock.advance(hours=2)
    world.caller.post(f"/v1/appointments/{appointment['id']}/cancel", json={"reason": "patient_request"})
    deliver()
    after = receiver.requests[1]
    assert json.loads(Webhook(new).verify(after["body"], after["headers"]) and after["body"])["type"] == (
        "appointment.cancelled"
    )
    from standardwebhooks.webhooks import WebhookVerificationError

    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after["body"], after["headers"])


def test_a_test_event_goes_to_that_subscription_only_through_the_normal_pipeline(
    world, receiver, private_allowed, deliver
):
    hook = subscribe(world.caller, receiver.url)
    bystander = Receiver()
    try:
        subscribe(world.caller, bystander.url, types=["webhook.test"])
        response = world.caller.post(f"/v1/webhooks/{hook['id']}/test")
        assert response.status_code == 202, response.get_json()
        queued = response.get_json()
        assert queued["event_type"] == "webhook.test" and queued["status"] == "pending" and queued["attempts"] == 0
        assert deliver() == 1
        assert bystander.requests == []
    finally:
        bystander.close()
    [request] = receiver.requests
    event = Webhook(hook["secret"]).verify(request["body"], request["headers"])
    assert event["type"] == "webhook.test" and event["data"]["webhook"]["id"] == hook["id"]
    assert request["headers"]["webhook-id"] == queued["event_id"]
    [logged] = deliveries(world.caller, hook["id"])
    assert logged["id"] == queued["id"] and logged["status"] == "delivered"


def test_a_failed_delivery_is_redelivered_from_the_log(world, receiver, private_allowed, deliver):
    hook = subscribe(world.caller, receiver.url)
    receiver.script = [(500, {})] * 100
    world.caller.post(f"/v1/webhooks/{hook['id']}/test")
    deliver()
    while deliveries(world.caller, hook["id"])[0]["status"] == "pending":
        world.clock.advance(hours=6)
        deliver()
    [failed] = deliveries(world.caller, hook["id"])
    assert failed["status"] == "failed"
    tries = len(receiver.requests)

    receiver.script = []  # the receiver is fixed
    response = world.caller.post(f"/v1/webhooks/{hook['id']}/deliveries/{failed['id']}/redeliver")
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["status"] == "pending" and response.get_json()["redelivered_at"] is not None
    assert deliver() == 1
    again = receiver.requests[tries]
    assert again["headers"]["webhook-id"] == failed["event_id"]
    assert Webhook(hook["secret"]).verify(again["body"], again["headers"])["type"] == "webhook.test"
    [done] = deliveries(world.caller, hook["id"])
    assert done["status"] == "delivered" and done["attempts"] == tries + 1

    # A delivered one can be asked for again too.
    assert world.caller.post(f"/v1/webhooks/{hook['id']}/deliveries/{done['id']}/redeliver").status_code == 202
    assert deliver() == 1 and len(receiver.requests) == tries + 2


def test_redelivering_another_subscriptions_or_organizations_delivery_is_a_404(world, other, admin):
    hook = subscribe(world.caller, "https://93.184.215.14/hooks")
    sibling = subscribe(world.caller, "https://93.184.215.14/other")
    delivery = world.caller.post(f"/v1/webhooks/{hook['id']}/test").get_json()
    assert_problem(
        world.caller.post(f"/v1/webhooks/{sibling['id']}/deliveries/{delivery['id']}/redeliver"), 404, "not_found"
    )
    assert_problem(other.post(f"/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}/redeliver"), 404, "not_found")
    foreign_hook = subscribe(other, "https://93.184.215.14/hooks")
    assert_problem(
        other.post(f"/v1/webhooks/{foreign_hook['id']}/deliveries/{delivery['id']}/redeliver"), 404, "not_found"
    )
    assert_problem(other.post(f"/v1/webhooks/{hook['id']}/test"), 404, "not_found")


def test_a_long_run_of_failures_disables_the_subscription_says_so_and_a_patch_re_enables_it(
    world, receiver, private_allowed, deliver
):
    hook = subscribe(world.caller, receiver.url)
    watcher = Receiver()
    try:
        watch = subscribe(world.caller, watcher.url, types=["webhook.disabled"])
        path = f"/v1/webhooks/{hook['id']}"
        tag = world.caller.get(path).headers["ETag"]
        receiver.script = [(500, {})] * 1000
        start = world.clock.now
        while world.caller.get(path).get_json()["status"] == "active":
            if (world.clock.now - start) % timedelta(hours=12) == timedelta(0):  # traffic keeps coming
                assert world.caller.post(f"{path}/test").status_code == 202
            deliver()
            if world.clock.now - start < timedelta(days=5):
                # failing, not disabled yet; the bookkeeping never makes an integrator's ETag stale
                assert world.caller.get(path).headers["ETag"] == tag
            world.clock.advance(hours=1)
            assert world.clock.now - start < timedelta(days=6), "never disabled"
        failures = len(receiver.requests)
        assert failures >= 10
        shown = world.caller.get(path).get_json()
        assert shown["status"] == "disabled" and start.isoformat() in shown["disabled_reason"]
        assert datetime.fromisoformat(shown["disabled_at"]) - start >= timedelta(days=5)
        assert {d["status"] for d in deliveries(world.caller, hook["id"])} <= {"failed", "cancelled"}

        deliver()  # the fan-out of webhook.disabled, to the watcher only
        [told] = watcher.requests
        event = Webhook(watch["secret"]).verify(told["body"], told["headers"])
        assert event["type"] == "webhook.disabled" and event["data"]["webhook"]["id"] == hook["id"]
        assert (
            event["data"]["why"] == "failing"
            and event["data"]["webhook"]["disabled_reason"] == shown["disabled_reason"]
        )
        assert event["data"]["webhook"]["failing_since"] == start.isoformat()

        assert_problem(world.caller.post(f"{path}/test"), 409, "invalid_transition")
        world.clock.advance(days=1)
        deliver()
        assert len(receiver.requests) == failures  # nothing is sent to a disabled subscription

        receiver.script = []
        enabled = world.caller.patch(path, json={"status": "active"})
        assert enabled.status_code == 200, enabled.get_json()
        assert enabled.get_json()["status"] == "active" and enabled.get_json()["disabled_reason"] is None
        world.caller.post(f"{path}/test")
        assert deliver() == 1 and len(receiver.requests) == failures + 1
    finally:
        watcher.close()


def test_a_410_is_announced_to_the_organizations_other_subscriptions(world, receiver, private_allowed, deliver):
    hook = subscribe(world.caller, receiver.url)
    watcher = Receiver()
    try:
        subscribe(world.caller, watcher.url, types=["webhook.disabled"])
        receiver.script = [(410, {})]
        world.caller.post(f"/v1/webhooks/{hook['id']}/test")
        deliver()
        deliver()
        [told] = watcher.requests
        body = json.loads(told["body"])
        assert body["type"] == "webhook.disabled" and body["data"]["why"] == "gone"
    finally:
        watcher.close()


def test_one_delivery_in_a_long_run_of_failures_starts_the_run_over(world, receiver, private_allowed, deliver):
    hook = subscribe(world.caller, receiver.url)
    path = f"/v1/webhooks/{hook['id']}"
    for _run in range(2):  # 4.5 days failing, one delivered, 4.5 days failing again: never 5 days in a row
        receiver.script = [(500, {})] * 1000
        for step in range(36):
            if step % 4 == 0:
                world.caller.post(f"{path}/test")
            deliver()
            world.clock.advance(hours=3)
        receiver.script = []
        world.caller.post(f"{path}/test")
        assert deliver() >= 1
    assert world.caller.get(path).get_json()["status"] == "active"


def test_a_patch_can_disable_a_subscription_which_cancels_what_is_pending_and_says_so(
    world, receiver, private_allowed, deliver
):
    hook = subscribe(world.caller, receiver.url)
    watcher = Receiver()
    try:
        subscribe(world.caller, watcher.url, types=["webhook.disabled"])
        receiver.script = [(500, {})]
        world.caller.post(f"/v1/webhooks/{hook['id']}/test")
        deliver()
        stopped = world.caller.patch(f"/v1/webhooks/{hook['id']}", json={"status": "disabled"}).get_json()
        assert stopped["status"] == "disabled" and "API" in stopped["disabled_reason"]
        world.clock.advance(hours=1)
        deliver()
        assert len(receiver.requests) == 1
        assert [d["status"] for d in deliveries(world.caller, hook["id"])] == ["cancelled"]
        [told] = watcher.requests
        assert json.loads(told["body"])["data"]["why"] == "requested"
    finally:
        watcher.close()


def test_course_plan_events_show_its_holds_as_tentative_until_confirmed(world, receiver, private_allowed, deliver):
    hook = subscribe(world.caller, receiver.url, types=["course_plan.held", "course_plan.confirmed"])
    world.consulted()
    course = world.caller.make_course(world.patient["id"], world.microneedling["id"])
    held = world.caller.post(f"/v1/courses/{course['id']}/plan", json={"sessions": 2, "hold": True}).get_json()
    assert world.caller.post(f"/v1/course-plans/{held['id']}/confirm").status_code == 200
    assert deliver() == 2
    sent = {e["type"]: e for e in (Webhook(hook["secret"]).verify(r["body"], r["headers"]) for r in receiver.requests)}
    assert set(sent) == {"course_plan.held", "course_plan.confirmed"}  # sent side by side: in either order
    at_hold, at_confirm = (sent[t]["data"]["course_plan"] for t in ("course_plan.held", "course_plan.confirmed"))
    assert at_hold["id"] == at_confirm["id"] == held["id"] and at_hold["status"] == "held"
    assert [s["tentative"] for s in at_hold["sessions"]] == [True, True]
    assert {s["hold"]["source"] for s in at_hold["sessions"]} == {"course_plan"}
    assert {s["hold"]["status"] for s in at_hold["sessions"]} == {"active"}
    assert at_confirm["status"] == "confirmed" and [s["tentative"] for s in at_confirm["sessions"]] == [False, False]
    assert all(s["appointment_id"] for s in at_confirm["sessions"])
