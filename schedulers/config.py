"""The scheduler's settings, from the environment (read in main(), never at import)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import timedelta

from booking.domain.policy import deployment_defaults
from booking.services.availability_search import Settings
from booking.services.follow_ups import FollowUpSettings
from booking.services.waitlist import WaitlistSettings
from models.db import default_database_url

_OFFSET = re.compile(r"^\s*(\d+)\s*([hm])\s*$")


def parse_offsets(text: str) -> list[timedelta]:
    """'48h,2h' -> [48 hours, 2 hours]; a bad entry is a startup error, not a silent skip."""
    offsets = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = _OFFSET.match(part)
        if not match or int(match[1]) == 0:
            raise ValueError(f"REMINDER_OFFSETS: {part!r} is not a positive number of hours (48h) or minutes (90m)")
        amount = int(match[1])
        offsets.append(timedelta(hours=amount) if match[2] == "h" else timedelta(minutes=amount))
    return sorted(set(offsets), reverse=True)


def flag(env, name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value not in ("", "0", "1", "true", "false", "yes", "no"):
        raise ValueError(f"{name} must be 1/0, true/false or yes/no")
    return value in ("1", "true", "yes")


@dataclass(frozen=True)
class SchedulerSettings:
    database_url: str
    lease_ttl: timedelta = timedelta(seconds=30)
    follow_up_every: timedelta = timedelta(seconds=60)
    expiry_every: timedelta = timedelta(seconds=30)
    reminders_every: timedelta = timedelta(seconds=60)
    waitlist_every: timedelta = timedelta(seconds=30)
    misfire_grace: timedelta = timedelta(seconds=30)
    webhooks_every: timedelta = timedelta(seconds=5)
    calendars_every: timedelta = timedelta(minutes=15)
    webhooks_allow_private: bool = False  # loopback and private receivers (tests, a private network)
    # Send workers, and how many of them one subscription or one organization may hold at once:
    # a receiver that never answers delays its own deliveries, never the others'.
    webhook_workers: int = 8
    webhook_sends_per_receiver: int = 2
    webhook_sends_per_organization: int = 4
    # A subscription is disabled after this many failed attempts in a row spanning at least this long.
    webhook_disable_after_failures: int = 10
    webhook_disable_after: timedelta = timedelta(days=5)
    reminder_offsets: list[timedelta] = field(default_factory=lambda: [timedelta(hours=48), timedelta(hours=2)])
    follow_ups: FollowUpSettings = field(default_factory=FollowUpSettings)
    waitlist: WaitlistSettings = field(default_factory=WaitlistSettings)

    @classmethod
    def from_environment(cls, env=os.environ) -> SchedulerSettings:
        def seconds(name: str, default: float) -> timedelta:
            value = float(env.get(name, default))
            if value <= 0:
                raise ValueError(f"{name} must be positive")
            return timedelta(seconds=value)

        def count(name: str, default: int) -> int:
            value = int(env.get(name, default))
            if value <= 0:
                raise ValueError(f"{name} must be a positive whole number")
            return value

        search = Settings.from_environment(env)
        return cls(
            database_url=env.get("DATABASE_URL") or default_database_url(),
            lease_ttl=seconds("SCHEDULER_LEASE_SECONDS", 30),
            follow_up_every=seconds("FOLLOW_UP_INTERVAL_SECONDS", 60),
            expiry_every=seconds("HOLD_EXPIRY_INTERVAL_SECONDS", 30),
            reminders_every=seconds("REMINDER_INTERVAL_SECONDS", 60),
            waitlist_every=seconds("WAITLIST_INTERVAL_SECONDS", 30),
            misfire_grace=seconds("SCHEDULER_MISFIRE_GRACE_SECONDS", 30),
            webhooks_every=seconds("WEBHOOK_INTERVAL_SECONDS", 5),
            calendars_every=seconds("EXTERNAL_CALENDAR_REFRESH_SECONDS", 900),
            webhooks_allow_private=flag(env, "WEBHOOKS_ALLOW_PRIVATE"),
            webhook_workers=count("WEBHOOK_WORKERS", 8),
            webhook_sends_per_receiver=count("WEBHOOK_SENDS_PER_RECEIVER", 2),
            webhook_sends_per_organization=count("WEBHOOK_SENDS_PER_ORGANIZATION", 4),
            webhook_disable_after_failures=count("WEBHOOK_DISABLE_AFTER_FAILURES", 10),
            webhook_disable_after=seconds("WEBHOOK_DISABLE_AFTER_DAYS", 5) * 86400,  # days, read as seconds
            reminder_offsets=parse_offsets(env.get("REMINDER_OFFSETS", "48h,2h")),
            follow_ups=FollowUpSettings(
                hold_for=timedelta(days=float(env.get("FOLLOW_UP_HOLD_DAYS", "7"))),
                release_before=timedelta(hours=float(env.get("FOLLOW_UP_RELEASE_HOURS", "48"))),
                search=search,
            ),
            waitlist=WaitlistSettings(
                offer_for=seconds("WAITLIST_OFFER_MINUTES", 120) * 60,  # minutes, read as seconds
                shortest_offer=seconds("WAITLIST_SHORTEST_OFFER_MINUTES", 5) * 60,  # minutes, read as seconds
                searches_per_organization=count("WAITLIST_SEARCHES_PER_ORGANIZATION", 60),
                horizon_recheck=seconds("WAITLIST_HORIZON_RECHECK_MINUTES", 60) * 60,  # minutes, read as seconds
                policy_defaults=deployment_defaults(
                    search.min_notice // timedelta(minutes=1),
                    search.horizon.days,
                    search.grid_minutes,
                    int(env.get("HOLD_TTL", "600")),
                ),
                search=search,
            ),
        )
