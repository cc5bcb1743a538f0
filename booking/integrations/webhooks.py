"""Webhooks: subscriptions, the fan-out of outbox events into deliveries, and delivery.

Signing follows Standard Webhooks (the `standardwebhooks` package): `webhook-id` is
the event id (the same on every retry, so a receiver can drop duplicates),
`webhook-timestamp` the send time in seconds, `webhook-signature` `v1,<base64 of
HMAC-SHA256 over "id.timestamp.body">`; during a rotation's grace period the header
carries two space-separated signatures, one per secret, so a receiver that verifies
with either accepts. Delivery is at least once: a 2xx counts as delivered; anything
else is retried with exponential backoff and jitter for about three days (a
`Retry-After` answer is honoured). A 410 disables the subscription at once, and so
does a long run of failures (`Disabling`); either is announced as a `webhook.disabled`
event to the organization's other subscriptions.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from base64 import b64encode
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from booking.domain import clock
from booking.domain.errors import InvalidInput, InvalidTransition, NotFound
from booking.integrations import net
from booking.services import events
from booking.services.changes import load, load_for_change
from booking.services.events import EVENT_TYPES
from models import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookSubscription
from models.base import new_id

GIVE_UP_AFTER = timedelta(days=3)
FIRST_RETRY = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=12)
# A delivery being sent is pushed this far ahead first, so a scheduler that dies
# mid-send leaves it due again later instead of lost. The sender renews it (renew_claims)
# while a send is still running, so no send is too slow for it.
IN_FLIGHT = timedelta(minutes=2)
SEND_DEADLINE = 10.0  # seconds for a whole send: lookup, connect, TLS, request, the answer's headers
SECRET_GRACE = timedelta(hours=24)  # how long a rotated-out secret still signs (the API's default)


@dataclass(frozen=True)
class Disabling:
    """When a failing receiver is disabled: after `failures` failed attempts in a row that span at
    least `after` with no delivery in between (as Svix does after five days). Both must hold, so a
    burst of failures within minutes, or a few spread over a week, never disables anyone."""

    failures: int = 10
    after: timedelta = timedelta(days=5)


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


def subscribe(
    db: Session, org: str, url: str, event_types: list[str], description: str | None, *, allow_private: bool
) -> WebhookSubscription:
    check_url(url, allow_private=allow_private)
    subscription = WebhookSubscription(
        organization_id=org,
        url=url,
        event_types=_event_types(event_types),
        description=description,
        secret=new_secret(),
        status="active",
    )
    db.add(subscription)
    db.flush()
    return subscription


def _event_types(event_types: list[str]) -> list[str]:
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown or not event_types:
        raise InvalidInput({"event_types": [f"Choose from: {', '.join(EVENT_TYPES)}."]})
    return sorted(set(event_types))


def change_subscription(
    db: Session, org: str, webhook_id: str, data: dict, expected_version: int | None, *, allow_private: bool
) -> WebhookSubscription:
    """PATCH: the URL (checked as on subscribing), event types, description, and `status`: `active`
    re-enables a disabled subscription, `disabled` stops it. Only what differs is written, so a PATCH
    that changes nothing leaves the version (and every client's ETag) as it was."""
    subscription = load_for_change(db, org, WebhookSubscription, webhook_id, expected_version, what="webhook")
    if "url" in data:
        check_url(data["url"], allow_private=allow_private)
    wanted = {
        "url": data.get("url", subscription.url),
        "event_types": _event_types(data["event_types"]) if "event_types" in data else subscription.event_types,
        "description": data.get("description", subscription.description),
    }
    for field, value in wanted.items():
        if getattr(subscription, field) != value:
            setattr(subscription, field, value)
    status = data.get("status", subscription.status)
    if status != subscription.status and status == "active":
        _enable(subscription)
    elif status != subscription.status:
        now = clock.now()
        disable(db, subscription, "requested", f"Disabled through the API at {now.isoformat()}.", now)
    db.flush()
    return subscription


def _enable(subscription: WebhookSubscription) -> None:
    subscription.status, subscription.disabled_reason, subscription.disabled_at = "active", None, None
    subscription.failing_since, subscription.consecutive_failures = None, 0


def disable(db: Session, subscription: WebhookSubscription, why: str, reason: str, now: datetime) -> None:
    """Stop sending: the pending deliveries are cancelled, and the organization's subscriptions to
    `webhook.disabled` (never this one, which is disabled now) are told, `why` being `gone` (a 410),
    `failing` (a long run of failures) or `requested`."""
    subscription.status, subscription.disabled_reason, subscription.disabled_at = "disabled", reason, now
    _cancel_pending(db, subscription, f"The subscription was disabled: {reason}")
    events.add(
        db,
        subscription.organization_id,
        "webhook.disabled",
        f"webhook.disabled:{subscription.id}:{now.isoformat()}",
        subscription.id,
        {
            "webhook": {
                "id": subscription.id,
                "url": subscription.url,
                "status": "disabled",
                "disabled_reason": reason,
                "disabled_at": now.isoformat(),
                "failing_since": subscription.failing_since.isoformat() if subscription.failing_since else None,
            },
            "why": why,
        },
    )


def rotate_secret(
    db: Session, org: str, webhook_id: str, expected_version: int | None, grace: timedelta = SECRET_GRACE
) -> WebhookSubscription:
    """A new secret; the one it replaces still signs every delivery for `grace`, so receivers can
    switch at their own pace. A rotation within the grace period drops the oldest of the three."""
    subscription = load_for_change(db, org, WebhookSubscription, webhook_id, expected_version, what="webhook")
    subscription.previous_secret, subscription.previous_secret_expires_at = subscription.secret, clock.now() + grace
    subscription.secret = new_secret()
    db.flush()
    return subscription


def _live(db: Session, org: str, webhook_id: str) -> WebhookSubscription:
    """The organization's subscription, which must be active for anything to be sent to it."""
    subscription = load(db, org, WebhookSubscription, webhook_id, what="webhook")
    if subscription.status != "active":
        raise InvalidTransition(
            f"The subscription is {subscription.status}; re-enable it first (PATCH with status active).",
            current_status=subscription.status,
        )
    return subscription


def send_test(db: Session, org: str, webhook_id: str) -> WebhookDelivery:
    """A `webhook.test` event for this subscription only, delivered (signed, logged, retried) like any other."""
    subscription = _live(db, org, webhook_id)
    now = clock.now()
    event = OutboxEvent(
        id=new_id("evt"),
        organization_id=org,
        type="webhook.test",
        subject_id=subscription.id,
        payload={"webhook": {"id": subscription.id, "url": subscription.url}, "message": "A test event."},
        occurred_at=now,
        dispatched_at=now,  # already fanned out: to this subscription, below, and to no other
    )
    event.dedupe_key = f"webhook.test:{event.id}"
    delivery = WebhookDelivery(
        organization_id=org, subscription_id=subscription.id, event=event, status="pending", next_attempt_at=now
    )
    db.add_all([event, delivery])
    db.flush()
    return delivery


def redeliver(db: Session, org: str, webhook_id: str, delivery_id: str) -> WebhookDelivery:
    """Send a delivery from the log again, whatever became of it; its retries count from now."""
    subscription = _live(db, org, webhook_id)
    delivery = db.scalar(
        sa.select(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.subscription_id == subscription.id,
            WebhookDelivery.organization_id == org,
        )
        .with_for_update(of=WebhookDelivery)
    )
    if delivery is None:
        raise NotFound(f"No delivery with id '{delivery_id}' for this webhook.")
    now = clock.now()
    # A pending delivery due within IN_FLIGHT may be being sent right now (a claim pushes it that far
    # ahead): it is left as it is rather than sent twice at once.
    if delivery.status != "pending" or delivery.next_attempt_at is None or delivery.next_attempt_at > now + IN_FLIGHT:
        delivery.next_attempt_at = now
    delivery.status, delivery.redelivered_at = "pending", now
    db.flush()
    return delivery


def unsubscribe(db: Session, subscription: WebhookSubscription) -> None:
    subscription.archived_at = clock.now()
    _cancel_pending(db, subscription, "The subscription was deleted.")


def delete_subscription(db: Session, org: str, webhook_id: str, expected_version: int | None) -> None:
    unsubscribe(db, load_for_change(db, org, WebhookSubscription, webhook_id, expected_version, what="webhook"))
    db.flush()


def _cancel_pending(db: Session, subscription: WebhookSubscription, why: str) -> None:
    db.execute(
        sa.update(WebhookDelivery)
        .where(
            WebhookDelivery.subscription_id == subscription.id,
            WebhookDelivery.status == "pending",
        )
        .values(
            status="cancelled",
            next_attempt_at=None,
            last_error=why,
            version=WebhookDelivery.version + 1,
            updated_at=clock.now(),
        )
    )


def fan_out(db: Session, now: datetime, limit: int = 500) -> int:
    """Turn undispatched outbox events into one delivery per matching live subscription.

    A subscription receives the events that occurred after it was made. The unique
    (subscription, event) pair makes a second fan-out of the same event a no-op.
    """
    batch = list(
        db.scalars(
            sa.select(OutboxEvent)
            .where(OutboxEvent.dispatched_at.is_(None))
            .order_by(OutboxEvent.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not batch:
        return 0
    subscriptions = list(
        db.scalars(
            sa.select(WebhookSubscription).where(
                WebhookSubscription.organization_id.in_({e.organization_id for e in batch}),
                WebhookSubscription.status == "active",
                WebhookSubscription.archived_at.is_(None),
            )
        )
    )
    made = 0
    for event in batch:
        for subscription in subscriptions:
            if (
                subscription.organization_id == event.organization_id
                and event.type in subscription.event_types
                and subscription.created_at <= event.created_at
            ):
                db.add(
                    WebhookDelivery(
                        organization_id=event.organization_id,
                        subscription_id=subscription.id,
                        event_id=event.id,
                        status="pending",
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
                made += 1
        event.dispatched_at = now
    db.flush()
    return made


@dataclass(frozen=True)
class Outgoing:
    """What to send: plain values, so sending needs no database session. `attempts` is the count at
    claim time: a renewal of the claim never touches a delivery whose outcome has been recorded since."""

    delivery_id: str
    url: str
    headers: dict
    body: bytes
    subscription_id: str = ""
    organization_id: str = ""
    attempts: int = 0


def body_of(event: OutboxEvent) -> str:
    return json.dumps(
        {"type": event.type, "timestamp": event.occurred_at.isoformat(), "data": event.payload},
        separators=(",", ":"),
        sort_keys=True,
    )


@dataclass(frozen=True)
class Room:
    """What a sender has room for. Claims never exceed it: a receiver (or an organization) at its cap of
    sends in flight has its deliveries left due, unclaimed, until one of its sends finishes, so one
    slow or hostile receiver can hold at most `per_subscription` of the sender's workers."""

    free: int  # workers with nothing to send
    per_subscription: int
    per_organization: int
    in_flight: tuple[Outgoing, ...] = ()  # being sent now: never claimed twice


def claim_due(
    db: Session, now: datetime, limit: int = 50, *, room: Room | None = None, subscription_id: str | None = None
) -> list[Outgoing]:
    """Due deliveries (of one subscription, when given), signed and marked in flight (pushed
    IN_FLIGHT ahead) for the caller to send, within `room` when given (else up to `limit`, uncapped)."""
    room = room or Room(free=limit, per_subscription=limit, per_organization=limit)
    limit = min(limit, room.free)
    if limit <= 0:
        return []
    busy_subscriptions = Counter(o.subscription_id for o in room.in_flight)
    busy_organizations = Counter(o.organization_id for o in room.in_flight)
    full_subscriptions = [s for s, n in busy_subscriptions.items() if n >= room.per_subscription]
    full_organizations = [o for o, n in busy_organizations.items() if n >= room.per_organization]
    delivery = WebhookDelivery
    due = (
        sa.select(delivery.id, delivery.subscription_id, delivery.organization_id, delivery.next_attempt_at)
        .join(WebhookSubscription, WebhookSubscription.id == delivery.subscription_id)
        .where(
            delivery.status == "pending",
            delivery.next_attempt_at <= now,
            WebhookSubscription.status == "active",
            WebhookSubscription.archived_at.is_(None),
        )
    )
    if subscription_id is not None:
        due = due.where(delivery.subscription_id == subscription_id)
    if full_subscriptions:
        due = due.where(delivery.subscription_id.not_in(full_subscriptions))
    if full_organizations:
        due = due.where(delivery.organization_id.not_in(full_organizations))
    if room.in_flight:
        due = due.where(delivery.id.not_in([o.delivery_id for o in room.in_flight]))
    # The first few of each subscription, then of those the first few of each organization: a backlog
    # of thousands behind one stuck receiver never crowds out the others' deliveries.
    first = due.add_columns(
        sa.func.row_number()
        .over(partition_by=delivery.subscription_id, order_by=(delivery.next_attempt_at, delivery.id))
        .label("n")
    ).subquery()
    per_subscription = (
        sa.select(first.c.id, first.c.organization_id, first.c.next_attempt_at)
        .where(first.c.n <= room.per_subscription)
        .subquery()
    )
    per_organization = sa.select(
        per_subscription.c.id,
        sa.func.row_number()
        .over(
            partition_by=per_subscription.c.organization_id,
            order_by=(per_subscription.c.next_attempt_at, per_subscription.c.id),
        )
        .label("n"),
    ).subquery()
    candidates = sa.select(per_organization.c.id).where(per_organization.c.n <= room.per_organization)
    rows = list(
        db.scalars(
            sa.select(delivery)
            .where(delivery.id.in_(candidates))
            .order_by(delivery.next_attempt_at, delivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=delivery)
        )
    )
    taken = []
    for row in rows:  # the exact room left, now that each receiver's sends in flight are counted
        if (
            busy_subscriptions[row.subscription_id] < room.per_subscription
            and busy_organizations[row.organization_id] < room.per_organization
        ):
            busy_subscriptions[row.subscription_id] += 1
            busy_organizations[row.organization_id] += 1
            taken.append(row)
    return [_claim(db, row, now) for row in taken]


def signing_secrets(subscription: WebhookSubscription, now: datetime) -> list[str]:
    """The current secret, and the one a rotation replaced while its grace period lasts."""
    expires = subscription.previous_secret_expires_at
    if subscription.previous_secret and expires is not None and now < expires:
        return [subscription.secret, subscription.previous_secret]
    return [subscription.secret]


def _claim(db: Session, delivery: WebhookDelivery, now: datetime) -> Outgoing:
    subscription = db.get_one(WebhookSubscription, delivery.subscription_id)
    body = body_of(delivery.event)
    sent_at = clock.wall_now().replace(microsecond=0)  # receivers compare it with their own clock
    secrets_now = signing_secrets(subscription, now)
    signatures = [Webhook(secret).sign(delivery.event_id, sent_at, body) for secret in secrets_now]
    headers = {
        "content-type": "application/json",
        "user-agent": "Needlebook-Webhooks/1",
        "webhook-id": delivery.event_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": " ".join(signatures),  # Standard Webhooks: any one of them verifies
    }
    delivery.next_attempt_at = now + IN_FLIGHT
    return Outgoing(
        delivery.id,
        subscription.url,
        headers,
        body.encode(),
        subscription.id,
        delivery.organization_id,
        delivery.attempts,
    )


def renew_claims(db: Session, still_sending: list[Outgoing], now: datetime) -> None:
    """Push deliveries still being sent IN_FLIGHT ahead again: however long a send takes, its
    delivery is not due (to a scheduler taking over the lease) while it is in flight. A delivery
    whose outcome was recorded meanwhile (attempts moved on) keeps what the outcome decided."""
    for sent in still_sending:
        db.execute(
            sa.update(WebhookDelivery)
            .where(
                WebhookDelivery.id == sent.delivery_id,
                WebhookDelivery.status == "pending",
                WebhookDelivery.attempts == sent.attempts,
            )
            .values(next_attempt_at=now + IN_FLIGHT)
            .execution_options(synchronize_session=False)
        )


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    retry_after: timedelta | None
    duration_ms: int


def send(outgoing: Outgoing, *, allow_private: bool) -> Outcome:
    """One POST within SEND_DEADLINE; never raises. Redirects are not followed (a 3xx is a failure).

    The answer's body is not read: a receiver's status is its answer. Each send connects to
    the address it checked (booking/integrations/net.py), never to a second lookup's.
    """
    started = time.monotonic()
    try:
        response = net.request(
            "POST",
            outgoing.url,
            allow_private=allow_private,
            deadline=SEND_DEADLINE,
            max_bytes=0,
            read_body=False,
            headers=outgoing.headers,
            body=outgoing.body,
        )
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
    return max(moment - clock.wall_now(), timedelta(0))  # the receiver's date, on its clock


def backoff(attempts: int, rng: _Uniform = random) -> timedelta:
    """30 s, 2 min, 8 min, ... doubling twice per attempt up to 12 h, each +-20% jitter."""
    wait = min(FIRST_RETRY * 4 ** (attempts - 1), LONGEST_WAIT)
    return wait * rng.uniform(0.8, 1.2)


class _Uniform(Protocol):
    """The random module itself, or a seeded random.Random."""

    def uniform(self, a: float, b: float, /) -> float: ...


def record(
    db: Session, delivery_id: str, outcome: Outcome, now: datetime, disabling: Disabling = Disabling()
) -> WebhookDelivery | None:
    """Log the attempt and decide what comes next: delivered, retry, give up, or disable the
    subscription (on a 410, or at the end of a long run of failures)."""
    # The subscription is locked before the delivery, in the order the API's changes take them
    # (a PATCH or DELETE locks the subscription, then cancels its pending deliveries).
    subscription = db.scalar(
        sa.select(WebhookSubscription)
        .join(WebhookDelivery, WebhookDelivery.subscription_id == WebhookSubscription.id)
        .where(WebhookDelivery.id == delivery_id)
        .with_for_update(of=WebhookSubscription)
        .execution_options(populate_existing=True)
    )
    delivery = db.scalar(
        sa.select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update(of=WebhookDelivery)
    )
    if subscription is None or delivery is None or delivery.status != "pending":
        return delivery
    db.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            attempted_at=now,
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
        )
    )
    delivery.attempts += 1
    delivery.last_attempt_at, delivery.last_status_code, delivery.last_error = now, outcome.status_code, outcome.error
    if outcome.error is None:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = "delivered", now, None
        if subscription.consecutive_failures:
            _count_failures(db, subscription, None, 0)
        return delivery
    since, failures = subscription.failing_since or now, subscription.consecutive_failures + 1
    _count_failures(db, subscription, since, failures)
    if outcome.status_code == 410:  # the receiver says this endpoint is gone for good
        delivery.status, delivery.next_attempt_at = "failed", None
        if subscription.status == "active":
            disable(db, subscription, "gone", f"The endpoint answered 410 Gone at {now.isoformat()}.", now)
        return delivery
    if subscription.status == "active" and failures >= disabling.failures and now - since >= disabling.after:
        delivery.status, delivery.next_attempt_at = "failed", None
        disable(
            db,
            subscription,
            "failing",
            f"No delivery succeeded since {since.isoformat()}: "
            f"{failures} attempts in a row failed, the last at {now.isoformat()}.",
            now,
        )
        return delivery
    wait = max(backoff(delivery.attempts), outcome.retry_after or timedelta(0))
    if now + wait > (delivery.redelivered_at or delivery.created_at) + GIVE_UP_AFTER:
        delivery.status, delivery.next_attempt_at = "failed", None
    else:
        delivery.next_attempt_at = now + wait
    return delivery


def _count_failures(db: Session, subscription: WebhookSubscription, since: datetime | None, failures: int) -> None:
    """Bookkeeping, not part of the subscription as the API shows it: written without bumping its
    version or updated_at, so a failing receiver never makes an integrator's ETag stale."""
    db.execute(
        sa.update(WebhookSubscription)
        .where(WebhookSubscription.id == subscription.id)
        .values(failing_since=since, consecutive_failures=failures, updated_at=subscription.updated_at)
    )
