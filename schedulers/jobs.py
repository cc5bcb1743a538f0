"""The scheduler's jobs: module-level functions that take the id of a registered runtime.

APScheduler keeps only that string (style: no bound methods or ORM objects as job
arguments). Each job is an idempotent sweep whose transactions start by renewing
the lease (`lease.fence`), so a scheduler that is not the holder does nothing.
A failure in one item is logged and the sweep goes on with the next; the item is
found again on the next run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from booking.domain import clock
from booking.domain.weekly import practitioner_zone
from booking.integrations import external_calendars, webhooks
from booking.services import follow_ups, sweeps, unit_of_work, waitlist
from models import ExternalCalendar, Practitioner, make_engine, make_sessionmaker, writer

from . import lease
from .config import SchedulerSettings
from .delivery import Sender

log = logging.getLogger("schedulers")


@dataclass
class Runtime:
    holder: str
    settings: SchedulerSettings
    sessions: sessionmaker[Session]
    is_leader: bool = False
    sender: Sender = field(init=False)  # set by register(): its workers call back with this runtime


_RUNTIMES: dict[str, Runtime] = {}


def register(holder: str, settings: SchedulerSettings, sessions: sessionmaker[Session] | None = None) -> Runtime:
    unregister(holder)
    if sessions is None:
        sessions = make_sessionmaker(writer(make_engine(settings.database_url)))
    run = Runtime(holder, settings, sessions)
    run.sender = Sender(settings.webhook_workers, partial(_send, run), partial(_record, run))
    _RUNTIMES[holder] = run
    return run


def unregister(holder: str, grace: float = 0.0) -> None:
    """Stop a runtime's send workers (sends in flight get `grace` seconds to finish) and forget it."""
    run = _RUNTIMES.pop(holder, None)
    if run is not None:
        run.sender.stop(grace)


def runtime(holder: str) -> Runtime:
    return _RUNTIMES[holder]


@contextmanager
def _fenced(run: Runtime) -> Iterator[Session | None]:
    """A unit of work that goes ahead only while we hold the lease; yields None otherwise."""
    with unit_of_work.transaction(run.sessions) as db:
        yield db if lease.fence(db, run.holder, run.settings.lease_ttl) else None


def keep_lease(holder: str) -> bool:
    """Take or renew the lease; runs often enough (a third of its ttl) that it never lapses."""
    run = runtime(holder)
    with unit_of_work.transaction(run.sessions) as db:
        leader = lease.acquire(db, holder, run.settings.lease_ttl)
    if leader != run.is_leader:
        log.info("%s the scheduler lease (%s)", "took" if leader else "lost", holder)
    run.is_leader = leader
    return leader


def propose_follow_ups(holder: str) -> int:
    """One transaction per completed session, so a crash loses at most the one in hand."""
    run = runtime(holder)
    settings = run.settings.follow_ups
    with _fenced(run) as db:
        pending = follow_ups.candidates(db, clock.now(), settings) if db is not None else []
    made = 0
    for appointment_id in pending:
        try:
            with _fenced(run) as db:
                if db is None:
                    break
                made += follow_ups.propose(db, appointment_id, settings) is not None
        except Exception:  # logged, found again next run; never stops the sweep
            log.exception("follow-up proposal for %s failed", appointment_id)
    if made:
        log.info("recorded %d follow-up proposal(s)", made)
    return made


def expire_holds(holder: str) -> int:
    run = runtime(holder)
    expired = 0
    while True:
        with _fenced(run) as db:
            if db is None:
                return expired
            now = clock.now()
            # Plans first: each releases its own holds (counted here too), locking plan then holds
            # as a confirm does.
            plans = sweeps.expired_plans(db, now)
            expired += sweeps.expire_plans(db, plans, now)
            due = sweeps.expired_holds(db, now)
            expired += sweeps.expire(db, due, now)
        if len(due) < 200 and len(plans) < 200:
            if expired:
                log.info("released %d expired hold(s)", expired)
            return expired


def offer_waitlist(holder: str) -> int:
    """End the entries whose window passed, then, organization by organization, offer open entries
    the earliest free slot each fits: one transaction per entry (the hold, the offer and its event
    together), so a crash loses at most the one in hand and never leaves half an offer.

    An entry is looked at only when its answer may have changed since its last look (its
    organization's signal moved, or the clock may have freed something: booking/services/waitlist.py),
    and each organization spends at most `searches_per_organization` availability searches per run:
    in join order, going on after its cursor (kept in the database) and wrapping round to its
    earliest-joined entries, so one organization's backlog takes several runs while every other
    organization is still served in each. Returns the offers made."""
    run = runtime(holder)
    with _fenced(run) as db:
        if db is None:
            return 0
        now = clock.now()
        ended = sum(waitlist.end(db, entry_id, now) for entry_id in waitlist.passed(db, now))
        waitlist.fold_crowded(db)
        organizations = waitlist.organizations_waiting(db, now)
    made = searches = 0
    for org in organizations:
        swept = _offer_in(run, org)
        if swept is None:  # the lease is lost: the holder that has it goes on from the cursors
            break
        made, searches = made + swept[0], searches + swept[1]
    if made or ended:
        log.info("waitlist: %d offer(s) made, %d entr(ies) ended, %d search(es)", made, ended, searches)
    return made


def _offer_in(run: Runtime, org: str) -> tuple[int, int] | None:
    """One organization's share of a waitlist run: (offers made, searches spent), None if the lease went."""
    settings = run.settings.waitlist
    with _fenced(run) as db:
        if db is None:
            return None
        signal, cursor = waitlist.begin_sweep(db, org)
    made = spent = 0
    last: tuple[datetime, str] | None = None
    # After the cursor to the last-joined, then the earliest-joined up to the cursor.
    for after, through in [(cursor, None)] + ([(None, cursor)] if cursor is not None else []):
        while True:
            with _fenced(run) as db:
                if db is None:
                    return None
                page = waitlist.due(db, org, clock.now(), signal, settings.batch, after, through)
            for key in page:
                if spent >= settings.searches_per_organization:
                    return _stop(run, org, last, made, spent)
                look = waitlist.Look(signal)
                try:
                    with _fenced(run) as db:
                        if db is None:
                            return None
                        made += waitlist.offer(db, key[1], settings, look) is not None
                except Exception:  # logged, found again next run; never stops the sweep
                    log.exception("waitlist offer for %s failed", key[1])
                spent, last = spent + look.searches, key
            if len(page) < settings.batch:
                break
            after = page[-1]
    return _stop(run, org, None, made, spent)


def _stop(run: Runtime, org: str, cursor: tuple[datetime, str] | None, made: int, spent: int) -> tuple[int, int] | None:
    with _fenced(run) as db:
        if db is None:
            return None
        waitlist.keep_cursor(db, org, cursor)
    return made, spent


def send_reminders(holder: str) -> int:
    run = runtime(holder)
    with _fenced(run) as db:
        if db is None:
            return 0
        now = clock.now()
        sent = sweeps.send_reminders(db, now, run.settings.reminder_offsets) + sweeps.send_aftercare(db, now)
    if sent:
        log.info("recorded %d reminder and aftercare event(s)", sent)
    return sent


def deliver_webhooks(holder: str) -> int:
    """Fan new events out to subscriptions, then hand what is due to the send workers; returns how
    many were handed over. Never waits for a send (see schedulers/delivery.py).

    No transaction stays open while waiting on a receiver: claiming pushes each
    delivery's next attempt ahead (so a crash means a later retry, never a loss), and
    each outcome is recorded in its own transaction when its send finishes. A
    receiver (or an organization) at its cap of sends in flight has its deliveries
    left due until it has room.
    """
    run = runtime(holder)
    with _fenced(run) as db:
        if db is None:
            return 0
        webhooks.fan_out(db, clock.now())
    sender = run.sender
    room = _room(run, sender.free(), tuple(sender.in_flight()))
    slow = sender.in_flight(longer_than=webhooks.IN_FLIGHT.total_seconds() / 2)
    if room.free <= 0 and not slow:
        return 0
    with _fenced(run) as db:
        if db is None:
            return 0
        now = clock.now()
        webhooks.renew_claims(db, slow, now)
        outgoing = webhooks.claim_due(db, now, room.free, room=room)
    for claimed in outgoing:
        sender.submit(claimed)
    if outgoing:
        log.info("webhooks: %d handed to the send workers, %d in flight", len(outgoing), len(room.in_flight))
    return len(outgoing)


def _send(run: Runtime, outgoing: webhooks.Outgoing) -> webhooks.Outcome:
    return webhooks.send(outgoing, allow_private=run.settings.webhooks_allow_private)


def _room(run: Runtime, free: int, in_flight: tuple[webhooks.Outgoing, ...]) -> webhooks.Room:
    return webhooks.Room(
        free=free,
        per_subscription=run.settings.webhook_sends_per_receiver,
        per_organization=run.settings.webhook_sends_per_organization,
        in_flight=in_flight,
    )


def _record(
    run: Runtime, outgoing: webhooks.Outgoing, outcome: webhooks.Outcome, others: tuple[webhooks.Outgoing, ...]
) -> tuple[bool, webhooks.Outgoing | None]:
    """In a send worker, as soon as its send finished: (delivered?, the receiver's next due delivery,
    claimed in the same transaction when this one was delivered, for the worker to send next)."""
    with _fenced(run) as db:
        if db is None:  # lost the lease: the new holder sends it again when it falls due
            return False, None
        now = clock.now()
        disabling = webhooks.Disabling(run.settings.webhook_disable_after_failures, run.settings.webhook_disable_after)
        delivery = webhooks.record(db, outgoing.delivery_id, outcome, now, disabling)
        if delivery is None or delivery.status != "delivered":
            return False, None  # a failing receiver waits for its retries to fall due
        following = webhooks.claim_due(db, now, 1, room=_room(run, 1, others), subscription_id=outgoing.subscription_id)
        return True, (following[0] if following else None)


def refresh_external_calendars(holder: str) -> int:
    """Fetch practitioners' external calendars by URL (and roll every expansion's horizon on).

    A feed that fails (or breaks a bound) keeps its last good copy; the error shows on the
    calendar. Fetching and expanding happen between the fenced transactions, which only read
    what is due and then store rows already worked out: no lease row or write lock is held
    while a remote server answers or a rule expands.
    """
    run = runtime(holder)
    with _fenced(run) as db:
        if db is None:
            return 0
        due = [
            (
                row.id,
                row.source_url,
                row.content,
                row.expanded_until,
                row.fetched_at,
                practitioner_zone(db.get_one(Practitioner, row.practitioner_id).clinic_zones),
            )
            for row in db.scalars(
                sa.select(ExternalCalendar).where(
                    ExternalCalendar.id.in_(
                        external_calendars.due_for_refresh(db, clock.now(), run.settings.calendars_every)
                    )
                )
            )
        ]
    refreshed = 0
    for calendar_id, url, last_good, expanded_until, fetched_at, zone in due:
        text, error = (
            external_calendars.download(url, allow_private=run.settings.webhooks_allow_private) if url else (None, None)
        )
        outcome = external_calendars.work_out(text, error, last_good, expanded_until, clock.now(), zone)
        try:
            with _fenced(run) as db:
                if db is None:
                    break
                row = db.get_one(ExternalCalendar, calendar_id)
                if row.archived_at is None and row.fetched_at == fetched_at:  # else changed meanwhile
                    refreshed += external_calendars.apply(db, row, outcome, clock.now())
        except Exception:  # logged, tried again next run
            log.exception("refreshing external calendar %s failed", calendar_id)
    if due:
        log.info("external calendars: %d of %d refreshed", refreshed, len(due))
    return refreshed
