"""`python -m schedulers`: the scheduler process (one per deployment is enough; more stand by)."""
from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import uuid
from datetime import datetime, timezone

from apscheduler.schedulers.blocking import BlockingScheduler

from . import jobs, lease
from .config import SchedulerSettings

log = logging.getLogger("schedulers")


def build(settings: SchedulerSettings, holder: str) -> BlockingScheduler:
    """Register the jobs; each runs once at start, then at its interval."""
    scheduler = BlockingScheduler(timezone=timezone.utc, job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": int(settings.misfire_grace.total_seconds())})
    start = datetime.now(timezone.utc)
    every = {
        "keep_lease": settings.lease_ttl / 3,
        "propose_follow_ups": settings.follow_up_every,
        "expire_holds": settings.expiry_every,
        "send_reminders": settings.reminders_every,
        "deliver_webhooks": settings.webhooks_every,
    }
    for name, interval in every.items():
        scheduler.add_job(getattr(jobs, name), "interval", args=[holder], id=name, name=name,
                          seconds=interval.total_seconds(), next_run_time=start, replace_existing=True)
    return scheduler


def _stop(signum, _frame):
    raise SystemExit(0)  # BlockingScheduler.start() returns on SystemExit


def main() -> int:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)  # one line per run otherwise
    settings = SchedulerSettings.from_environment()
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    run = jobs.register(holder, settings)
    scheduler = build(settings, holder)
    signal.signal(signal.SIGTERM, _stop)
    log.info("scheduler %s starting (lease %ss)", holder, settings.lease_ttl.total_seconds())
    jobs.keep_lease(holder)  # before the first sweeps, so a lone scheduler does not wait a round
    try:
        scheduler.start()
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=True)
        with run.sessions.begin() as db:
            lease.release(db, holder)
        log.info("scheduler %s stopped", holder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
