"""Webhooks: subscriptions, the fan-out of outbox events into deliveries, and delivery.

Signing follows Standard Webhooks (the `standardwebhooks` package): `webhook-id` is
the event id (the same on every retry, so a receiver can drop duplicates),
`webhook-timestamp` the send time in seconds, `webhook-signature` `v1,<base64 of
HMAC-SHA256 over "id.timestamp.body">`. Delivery is at least once: a 2xx counts as
delivered; anything else is retried with exponential backoff and jitter for about
three days (a `Retry-After` answer is honoured); a 410 disables the subscription.
"""
from __future__ import annotations

import json
import random
import secrets
import time
from base64 import b64encode
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import sqlalchemy as sa
import urllib3
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from models import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookSubscription

from . import clock, net
from .errors import InvalidInput
from .events import EVENT_TYPES

GIVE_UP_AFTER = timedelta(days=3)
FIRST_RETRY = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=12)
# A delivery being sent is pushed this far ahead first, so a scheduler that dies
# mid-send leaves it due again later instead of lost.
IN_FLIGHT = timedelta(minutes=2)
SEND_DEADLINE = 10.0  # seconds for a whole send: lookup, connect, TLS, request, the answer's headers


def new_secret() -> str:
    return "whsec_" + b64encode(secrets.token_bytes(24)).decode()


def check_url(url: str, *, allow_private: bool) -> None:
    """http(s) only, and no private, loopback or link-local address unless allowed.

    Checked on subscribing; every send checks again the address it connects to (the name
    may resolve elsewhere by then). Redirects are never followed.
    """
    try:
        net.check(url, allow_private=allow_private)
    except net.RequestFailed as refused:
        raise InvalidInput({"url": [str(refused)]}) from None


def subscribe(db: Session, org: str, url: str, event_types: list[str], description: str | None,
              *, allow_private: bool) -> WebhookSubscription:
    check_url(url, allow_private=allow_private)
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown or not event_types:
        raise InvalidInput({"event_types": [f"Choose from: {', '.join(EVENT_TYPES)}."]})
    subscription = WebhookSubscription(organization_id=org, url=url, event_types=sorted(set(event_types)),
                                       description=description, secret=new_secret(), status="active")
    db.add(subscription)
    db.flush()
    return subscription


def unsubscribe(db: Session, subscription: WebhookSubscription) -> None:
    subscription.archived_at = clock.now()
    _cancel_pending(db, subscription, "The subscription was deleted.")


def _cancel_pending(db: Session, subscription: WebhookSubscription, why: str) -> None:
    db.execute(sa.update(WebhookDelivery).where(
        WebhookDelivery.subscription_id == subscription.id, WebhookDelivery.status == "pending",
    ).values(status="cancelled", next_attempt_at=None, last_error=why, version=WebhookDelivery.version + 1,
             updated_at=clock.now()))


def fan_out(db: Session, now: datetime, limit: int = 500) -> int:
    """Turn undispatched outbox events into one delivery per matching live subscription.

    A subscription receives the events that occurred after it was made. The unique
    (subscription, event) pair makes a second fan-out of the same event a no-op.
    """
    batch = list(db.scalars(sa.select(OutboxEvent).where(OutboxEvent.dispatched_at.is_(None))
                            .order_by(OutboxEvent.id).limit(limit).with_for_update(skip_locked=True)))
    if not batch:
        return 0
    subscriptions = list(db.scalars(sa.select(WebhookSubscription).where(
        WebhookSubscription.organization_id.in_({e.organization_id for e in batch}),
        WebhookSubscription.status == "active", WebhookSubscription.archived_at.is_(None))))
    made = 0
    for event in batch:
        for subscription in subscriptions:
            if (subscription.organization_id == event.organization_id and event.type in subscription.event_types
                    and subscription.created_at <= event.created_at):
                db.add(WebhookDelivery(organization_id=event.organization_id, subscription_id=subscription.id,
                                       event_id=event.id, status="pending", next_attempt_at=now, created_at=now))
                made += 1
        event.dispatched_at = now
    db.flush()
    return made


@dataclass(frozen=True)
class Outgoing:
    """What to send: plain values, so sending needs no database session."""

    delivery_id: str
    url: str
    headers: dict
    body: bytes


def body_of(event: OutboxEvent) -> str:
    return json.dumps({"type": event.type, "timestamp": event.occurred_at.isoformat(), "data": event.payload},
                      separators=(",", ":"), sort_keys=True)


def claim_due(db: Session, now: datetime, limit: int = 50) -> list[Outgoing]:
    """Due deliveries, signed and marked in flight (pushed IN_FLIGHT ahead) for the caller to send."""
    due = list(db.scalars(
        sa.select(WebhookDelivery).join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now,
               WebhookSubscription.status == "active", WebhookSubscription.archived_at.is_(None))
        .order_by(WebhookDelivery.next_attempt_at).limit(limit).with_for_update(skip_locked=True, of=WebhookDelivery)))
    outgoing = []
    for delivery in due:
        subscription = db.get(WebhookSubscription, delivery.subscription_id)
        body = body_of(delivery.event)
        sent_at = datetime.fromtimestamp(int(time.time()), timezone.utc)  # receivers compare with their clock
        headers = {
            "content-type": "application/json", "user-agent": "Needlebook-Webhooks/1",
            "webhook-id": delivery.event_id, "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": Webhook(subscription.secret).sign(delivery.event_id, sent_at, body),
        }
        delivery.next_attempt_at = now + IN_FLIGHT
        outgoing.append(Outgoing(delivery.id, subscription.url, headers, body.encode()))
    return outgoing


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    retry_after: timedelta | None
    duration_ms: int


def send(outgoing: Outgoing, http: urllib3.PoolManager | None = None, *, allow_private: bool) -> Outcome:
    """One POST within SEND_DEADLINE; never raises. Redirects are not followed (a 3xx is a failure).

    The answer's body is not read: a receiver's status is its answer. `http` is no longer
    used (each send connects to the address it checked); it is accepted for the callers.
    """
    started = time.monotonic()
    try:
        response = net.request("POST", outgoing.url, allow_private=allow_private, deadline=SEND_DEADLINE,
                               max_bytes=0, read_body=False, headers=outgoing.headers, body=outgoing.body)
    except net.RequestFailed as failure:  # refused, unreachable, too slow, TLS ...: all retried alike
        return Outcome(None, str(failure), None, _ms(started))
    except Exception as failure:  # noqa: BLE001 - never raises: an unforeseen failure is retried too
        return Outcome(None, f"{type(failure).__name__}: {failure}"[:500], None, _ms(started))
    error = None if 200 <= response.status < 300 else f"HTTP {response.status}"
    return Outcome(response.status, error, _retry_after(response.headers.get("retry-after")), _ms(started))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _retry_after(value: str | None) -> timedelta | None:
    """Retry-After as seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max(moment - datetime.now(timezone.utc), timedelta(0))


def backoff(attempts: int, rng: random.Random = random) -> timedelta:
    """30 s, 2 min, 8 min, ... doubling twice per attempt up to 12 h, each +-20% jitter."""
    wait = min(FIRST_RETRY * 4 ** (attempts - 1), LONGEST_WAIT)
    return wait * rng.uniform(0.8, 1.2)


def record(db: Session, delivery_id: str, outcome: Outcome, now: datetime) -> WebhookDelivery | None:
    """Log the attempt and decide what comes next: delivered, retry, give up, or disable on 410."""
    delivery = db.scalar(sa.select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update(of=WebhookDelivery))
    if delivery is None or delivery.status != "pending":
        return delivery
    db.add(WebhookAttempt(delivery_id=delivery.id, attempted_at=now, status_code=outcome.status_code,
                          error=outcome.error, duration_ms=outcome.duration_ms))
    delivery.attempts += 1
    delivery.last_attempt_at, delivery.last_status_code, delivery.last_error = now, outcome.status_code, outcome.error
    if outcome.error is None:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = "delivered", now, None
        return delivery
    if outcome.status_code == 410:  # the receiver says this endpoint is gone for good
        subscription = db.get(WebhookSubscription, delivery.subscription_id)
        subscription.status, subscription.disabled_reason = "disabled", f"The endpoint answered 410 Gone at {now.isoformat()}."
        delivery.status, delivery.next_attempt_at = "failed", None
        _cancel_pending(db, subscription, "The subscription was disabled (410 Gone).")
        return delivery
    wait = max(backoff(delivery.attempts), outcome.retry_after or timedelta(0))
    if now + wait > delivery.created_at + GIVE_UP_AFTER:
        delivery.status, delivery.next_attempt_at = "failed", None
    else:
        delivery.next_attempt_at = now + wait
    return delivery
