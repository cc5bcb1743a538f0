"""Bearer tokens that stand for one object: a booking page's hold, a patient's manage link, a
patient's booking link.

Each is 256 random bits, shown once and stored as its SHA-256 only (as API keys are, and for the
same reason: nothing to brute-force that a slow hash would protect). The prefix says what a token
is for, so one pasted in the wrong place is recognised.
"""

from __future__ import annotations

import hashlib
import secrets

HOLD_TOKEN_PREFIX = "ht_"
MANAGE_TOKEN_PREFIX = "mt_"
BOOKING_LINK_PREFIX = "bl_"  # a patient's personal booking link (booking_links.py)
MAX_LENGTH = 100  # longer than any token made here: refused before it is hashed


def new_token(prefix: str) -> tuple[str, str]:
    """(the token, its digest)."""
    token = prefix + secrets.token_urlsafe(32)
    return token, digest(token)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def looks_like(token: str, prefix: str) -> bool:
    return token.startswith(prefix) and len(token) <= MAX_LENGTH
