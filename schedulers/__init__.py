"""The APScheduler process (follow-up proposals, hold expiry, reminders) lives here."""
