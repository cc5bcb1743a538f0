"""The APScheduler process (`python -m schedulers`) and its jobs, registered in `__main__.build` by id:

- keep_lease: renew the lease row, so only one scheduler acts (lease.py);
- propose_follow_ups: hold the next session after a completed one;
- expire_holds: release holds and course plans past their expiry;
- offer_waitlist: end passed waitlist entries, offer each open one the earliest free slot it fits;
- send_reminders: reminders before a booked start, aftercare after a session;
- deliver_webhooks: send due webhook deliveries (delivery.py holds the send workers);
- refresh_external_calendars: fetch external calendar URLs again.

The jobs themselves are in jobs.py; `serve` starts gunicorn and this process for `make run`.
"""
