"""`python -m schedulers`: the scheduler process (one per deployment is enough; more stand by)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, timedelta
from types import FrameType

from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler

from booking.domain import clock
from booking.services import unit_of_work

from . import jobs, lease
from .config import SchedulerSettings

log = logging.getLogger("schedulers")
SEND_GRACE_SECONDS = 2


def build(settings: SchedulerSettings, holder: str) -> BlockingScheduler:
    """Register the jobs; each runs once at start, then at its interval."""
    scheduler = BlockingScheduler(
        timezone=UTC,
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": int(settings.misfire_grace.total_seconds()),
        },
    )
    start = clock.wall_now()  # APScheduler's triggers run on the real clock
    every = {
        "keep_lease": settings.lease_ttl / 3,
        "propose_follow_ups": settings.follow_up_every,
        "expire_holds": settings.expiry_every,
        "send_reminders": settings.reminders_every,
        "offer_waitlist": settings.waitlist_every,
        "deliver_webhooks": settings.webhooks_every,
        # Checked every minute; each calendar is fetched once per EXTERNAL_CALENDAR_REFRESH_SECONDS.
        "refresh_external_calendars": min(settings.calendars_every, timedelta(minutes=1)),
    }
    for name, interval in every.items():
        scheduler.add_job(
            getattr(jobs, name),
            "interval",
            args=[holder],
            id=name,
            name=name,
            seconds=interval.total_seconds(),
            next_run_time=start,
            replace_existing=True,
        )
    return scheduler


def _on_sigterm(scheduler: BlockingScheduler) -> Callable[[int, FrameType | None], None]:
    """SIGTERM: no new runs, the running ones finish, start() returns.

    Not SystemExit from the handler once running: it can land inside APScheduler's job
    submission, which catches BaseException, logs it and keeps the scheduler going.
    """

    def stop(_signum: int, _frame: FrameType | None) -> None:
        if not scheduler.running:  # still starting: nothing of APScheduler's on the stack
            raise SystemExit(0)
        threading.Thread(target=_shut_down, args=(scheduler,), name="sigterm").start()

    return stop


def _shut_down(scheduler: BlockingScheduler) -> None:
    with contextlib.suppress(SchedulerNotRunningError):  # a second SIGTERM
        scheduler.remove_all_jobs()  # else the main loop may submit one to the stopped executor
        scheduler.shutdown(wait=True)


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)  # one line per run otherwise
    # A sweep longer than its interval is expected (max_instances=1 makes the next tick wait): not a warning.
    logging.getLogger("apscheduler.scheduler").addFilter(
        lambda record: "maximum number of running instances" not in record.getMessage()
    )
    settings = SchedulerSettings.from_environment()
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    run = jobs.register(holder, settings)
    scheduler = build(settings, holder)
    signal.signal(signal.SIGTERM, _on_sigterm(scheduler))
    log.info("scheduler %s starting (lease %ss)", holder, settings.lease_ttl.total_seconds())
    try:
        jobs.keep_lease(holder)  # before the first sweeps, so a lone scheduler does not wait a round
        scheduler.start()
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=True)
        # Sends that finish within the grace are recorded (the lease is still ours); the
        # rest, stuck on slow receivers, are abandoned and sent again later.
        run.sender.stop(grace=SEND_GRACE_SECONDS)
        with unit_of_work.transaction(run.sessions) as db:
            lease.release(db, holder)
        log.info("scheduler %s stopped", holder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
