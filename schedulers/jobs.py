"""The scheduler's jobs: module-level functions that take the id of a registered runtime.

APScheduler keeps only that string (style: no bound methods or ORM objects as job
arguments). Each job is an idempotent sweep whose transactions start by renewing
the lease (`lease.fence`), so a scheduler that is not the holder does nothing.
A failure in one item is logged and the sweep goes on with the next; the item is
found again on the next run.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import sqlalchemy as sa
import urllib3

from sqlalchemy.orm import Session, sessionmaker

from booking import clock, external, followups, sweeps, webhooks
from models import ExternalCalendar, Practitioner, make_engine, make_sessionmaker, writer

from . import lease
from .config import SchedulerSettings

log = logging.getLogger("schedulers")


@dataclass
class Runtime:
    holder: str
    settings: SchedulerSettings
    sessions: sessionmaker[Session]
    is_leader: bool = False
    # maxsize: one connection per delivery thread (deliver_webhooks sends 8 at a time).
    http: urllib3.PoolManager = field(default_factory=lambda: urllib3.PoolManager(num_pools=20, maxsize=8))


_RUNTIMES: dict[str, Runtime] = {}


def register(holder: str, settings: SchedulerSettings, sessions: sessionmaker[Session] | None = None) -> Runtime:
    if sessions is None:
        sessions = make_sessionmaker(writer(make_engine(settings.database_url)))
    runtime = _RUNTIMES[holder] = Runtime(holder, settings, sessions)
    return runtime


def runtime(holder: str) -> Runtime:
    return _RUNTIMES[holder]


@contextmanager
def _fenced(run: Runtime):
    """A transaction that goes ahead only while we hold the lease; yields None otherwise."""
    with run.sessions.begin() as db:
        yield db if lease.fence(db, run.holder, run.settings.lease_ttl) else None


def keep_lease(holder: str) -> bool:
    """Take or renew the lease; runs often enough (a third of its ttl) that it never lapses."""
    run = runtime(holder)
    with run.sessions.begin() as db:
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
        pending = followups.candidates(db, clock.now(), settings) if db is not None else []
    made = 0
    for appointment_id in pending:
        try:
            with _fenced(run) as db:
                if db is None:
                    break
                made += followups.propose(db, appointment_id, settings) is not None
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
            due = sweeps.expired_holds(db, now)
            expired += sweeps.expire(db, due, now)
        if len(due) < 200:
            if expired:
                log.info("released %d expired hold(s)", expired)
            return expired


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
    """Fan new events out to subscriptions, then send what is due, a few at a time.

    No transaction stays open while waiting on a receiver: claiming pushes each
    delivery's next attempt ahead (so a crash means a later retry, never a loss),
    the sends run in parallel, and each outcome is recorded in its own transaction.
    """
    run = runtime(holder)
    with _fenced(run) as db:
        if db is None:
            return 0
        webhooks.fan_out(db, clock.now())
    with _fenced(run) as db:
        outgoing = webhooks.claim_due(db, clock.now()) if db is not None else []
    if not outgoing:
        return 0
    allow_private = run.settings.webhooks_allow_private
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda o: webhooks.send(o, run.http, allow_private=allow_private), outgoing))
    delivered = 0
    for sent, outcome in zip(outgoing, outcomes):
        with _fenced(run) as db:
            if db is None:  # lost the lease: the new holder sends these again when they fall due
                break
            delivery = webhooks.record(db, sent.delivery_id, outcome, clock.now())
            delivered += delivery is not None and delivery.status == "delivered"
    log.info("webhooks: %d sent, %d delivered", len(outgoing), delivered)
    return delivered


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
        due = [(row.id, row.source_url, row.content, row.expanded_until, row.fetched_at,
                external.practitioner_zone(db.get(Practitioner, row.practitioner_id)))
               for row in db.scalars(sa.select(ExternalCalendar).where(
                   ExternalCalendar.id.in_(external.due_for_refresh(db, clock.now(), run.settings.calendars_every))))]
    refreshed = 0
    for calendar_id, url, last_good, expanded_until, fetched_at, zone in due:
        text, error = (external.download(url, run.http, allow_private=run.settings.webhooks_allow_private)
                       if url else (None, None))
        outcome = external.work_out(text, error, last_good, expanded_until, clock.now(), zone)
        try:
            with _fenced(run) as db:
                if db is None:
                    break
                row = db.get(ExternalCalendar, calendar_id)
                if row.archived_at is None and row.fetched_at == fetched_at:  # else changed meanwhile
                    refreshed += external.apply(db, row, outcome, clock.now())
        except Exception:  # logged, tried again next run
            log.exception("refreshing external calendar %s failed", calendar_id)
    if due:
        log.info("external calendars: %d of %d refreshed", refreshed, len(due))
    return refreshed
