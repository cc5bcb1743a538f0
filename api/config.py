"""Configuration from the environment, read when the app is built (never at import)."""

from __future__ import annotations

import os
from datetime import timedelta

from booking.domain.policy import Policy, deployment_defaults
from booking.services.availability_search import Settings
from models.db import default_database_url


def policy_defaults(config) -> Policy:
    """The defaults of every organization's booking policy defaults: the deployment's environment."""
    return deployment_defaults(
        config["AVAILABILITY_MIN_NOTICE_MINUTES"],
        config["AVAILABILITY_HORIZON_DAYS"],
        config["AVAILABILITY_GRID_MINUTES"],
        config["HOLD_TTL_SECONDS"],
    )


def from_environment(env=os.environ) -> dict:
    search = Settings.from_environment(env)
    return {
        "DATABASE_URL": env.get("DATABASE_URL") or default_database_url(),
        "PORT": int(env.get("PORT", "8000")),
        "HOLD_TTL_SECONDS": int(env.get("HOLD_TTL", "600")),
        "MAX_CONTENT_LENGTH": int(env.get("MAX_BODY_BYTES", str(256 * 1024))),
        "LOG_LEVEL": env.get("LOG_LEVEL", "INFO"),
        "AVAILABILITY_GRID_MINUTES": search.grid_minutes,
        "AVAILABILITY_MIN_NOTICE_MINUTES": search.min_notice // timedelta(minutes=1),
        "AVAILABILITY_HORIZON_DAYS": search.horizon.days,
        # Per API key on /v1 (flask-limiter notation); counted in Redis when REDIS_URL is set.
        "RATE_LIMIT": env.get("RATE_LIMIT", "600 per minute"),
        # A publishable key is one key for every visitor of a booking page: counted per key with its
        # own (higher) limit, and per key and client address with a lower one (api/limits.py).
        "PUBLISHABLE_RATE_LIMIT": env.get("PUBLISHABLE_RATE_LIMIT", "3000 per minute"),
        "PUBLISHABLE_ADDRESS_RATE_LIMIT": env.get("PUBLISHABLE_ADDRESS_RATE_LIMIT", "60 per minute"),
        "RATE_LIMIT_ENABLED": env.get("RATE_LIMIT_ENABLED", "1").strip().lower() not in ("0", "false", "no"),
        "REDIS_URL": env.get("REDIS_URL") or None,
        # Browser frontends allowed to call the API (comma-separated origins, or *); none by default.
        # The booking pages (/book/<slug>): JSON {"<slug>": "pk_..."}; default: in the instance folder
        # beside the demo's key, one file per database (api/pages.py).
        **({"BOOKING_PAGES_FILE": env["BOOKING_PAGES_FILE"]} if env.get("BOOKING_PAGES_FILE") else {}),
        "CORS_ORIGINS": [o.strip() for o in env.get("CORS_ORIGINS", "").split(",") if o.strip()],
        # Webhook receivers on loopback or private addresses (tests, a private network): off by default.
        "WEBHOOKS_ALLOW_PRIVATE": env.get("WEBHOOKS_ALLOW_PRIVATE", "").strip().lower() in ("1", "true", "yes"),
        # How long a webhook's rotated-out signing secret still signs deliveries beside the new one.
        "WEBHOOK_SECRET_GRACE_HOURS": float(env.get("WEBHOOK_SECRET_GRACE_HOURS", "24")),
    }
