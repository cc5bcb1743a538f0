"""Organizations and API keys: create, issue and resolve keys."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking.domain import clock
from booking.domain.errors import InvalidInput
from booking.domain.policy import DEFAULT_POLICY, FRONTEND, Policy
from booking.services import policies
from booking.services.changes import check_version, load_for_change
from models import CHANNELS, KEY_KINDS, SCOPES, ApiKey, Organization

KEY_PREFIX = "nbk_"
PUBLISHABLE_PREFIX = "pk_"
PREFIXES = (KEY_PREFIX, PUBLISHABLE_PREFIX)
# What a publishable key may hold: it is in every visitor's browser, so never `admin`.
PUBLISHABLE_SCOPES = ("read", "book")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_api_key(
    db: Session,
    organization_id: str,
    name: str,
    scopes: Iterable[str] | None,
    channel: str = "frontend",
    *,
    kind: str = "secret",
    origins: Iterable[str] | None = None,
) -> tuple[ApiKey, str]:
    """A new key; the clear token is returned once and never stored.

    A key is a booking frontend's unless asked for as `staff` (the trust is granted, never assumed).
    A publishable key (`pk_...`) is always a frontend's, holds read and book at most (both by
    default), and lists the browser origins it may be used from."""
    if kind not in KEY_KINDS:
        raise InvalidInput({"kind": [f"Must be one of: {', '.join(KEY_KINDS)}."]})
    publishable = kind == "publishable"
    scopes = list(dict.fromkeys(PUBLISHABLE_SCOPES if scopes is None and publishable else scopes or ()))
    allowed = PUBLISHABLE_SCOPES if publishable else SCOPES
    unknown = [s for s in scopes if s not in allowed]
    if unknown or not scopes:
        raise InvalidInput({"scopes": [f"Each scope must be one of: {', '.join(allowed)}."]})
    if channel not in CHANNELS:
        raise InvalidInput({"channel": [f"Must be one of: {', '.join(CHANNELS)}."]})
    if publishable and channel != FRONTEND:
        raise InvalidInput({"channel": ["A publishable key is a booking page's: its channel is frontend."]})
    listed = _origins(origins) if publishable else None
    if not publishable and origins is not None:
        raise InvalidInput({"origins": ["Only a publishable key lists origins."]})
    prefix = PUBLISHABLE_PREFIX if publishable else KEY_PREFIX
    token = prefix + secrets.token_urlsafe(32)
    key = ApiKey(
        organization_id=organization_id,
        name=name,
        digest=digest(token),
        prefix=token[: len(prefix) + 6],
        scopes=scopes,
        channel=channel,
        kind=kind,
        origins=listed,
    )
    db.add(key)
    db.flush()
    return key, token


def create_organization(db: Session, name: str) -> tuple[Organization, str]:
    """An organization with one admin key holding every scope: a staff key (the organization's own)."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidInput({"name": ["Must be 1 to 200 characters."]})
    organization = Organization(name=name)
    db.add(organization)
    db.flush()
    _, token = issue_api_key(db, organization.id, "admin", SCOPES, channel="staff")
    return organization, token


def _origins(origins: Iterable[str] | None) -> list[str]:
    """Each a browser origin as a browser sends it (`https://book.example.com`, a port if any, no
    path), lower-cased; http only for localhost (a page under development)."""
    listed = list(dict.fromkeys(origins or ()))
    problems = [
        f"'{o}' is not an origin such as https://book.example.com." for o in listed if not _is_origin(o.lower())
    ]
    if not listed or problems:
        raise InvalidInput({"origins": problems or ["List at least one origin the booking page is served from."]})
    return [o.lower() for o in listed]


# An origin as a browser sends it: scheme, host and maybe a port, no path; http only for localhost.
ORIGIN = re.compile(
    r"https://[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?"
    r"|http://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]{1,5})?"
)


def _is_origin(text: str) -> bool:
    return len(text) <= 200 and ORIGIN.fullmatch(text) is not None


def origin_allowed(key: ApiKey | KeyFacts, origin: str) -> bool:
    return origin.lower() in (key.origins or ())


def listed_by_a_publishable_key(db: Session, origin: str) -> bool:
    """Whether any live publishable key, of any organization, lists `origin` (a preflight names no key).

    Read in Python: the JSON lists are short and there are few publishable keys; an index on
    origins would want a table of its own."""
    rows = db.scalars(sa.select(ApiKey.origins).where(ApiKey.kind == "publishable", ApiKey.revoked_at.is_(None)))
    return any(origin.lower() in (origins or ()) for origins in rows)


@dataclass(frozen=True)
class KeyFacts:
    """What a request uses of its API key; a key's scopes and channel never change once issued."""

    id: str
    organization_id: str
    scopes: tuple[str, ...]
    channel: str
    kind: str
    origins: tuple[str, ...] | None  # a publishable key's browser origins

    @property
    def publishable(self) -> bool:
        return self.kind == "publishable"


def find_key(db: Session, token: str) -> KeyFacts | None:
    if not token.startswith(PREFIXES) or len(token) > 200:
        return None
    row = db.execute(
        sa.select(ApiKey.id, ApiKey.organization_id, ApiKey.scopes, ApiKey.channel, ApiKey.kind, ApiKey.origins).where(
            ApiKey.digest == digest(token), ApiKey.revoked_at.is_(None)
        )
    ).one_or_none()
    if row is None:
        return None
    origins = None if row.origins is None else tuple(row.origins)
    return KeyFacts(row.id, row.organization_id, tuple(row.scopes), row.channel, row.kind, origins)


def key_live(key_id: sa.ColumnElement | str) -> sa.ColumnElement[bool]:
    """The key exists and is not revoked: what a request answered from KeyCache must show in one of
    its statements (the availability window reads it beside the claims)."""
    return sa.and_(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))


class KeyCache:
    """digest -> KeyFacts, per worker: a key found before, used on trust only until a statement of the
    same request shows it live (api/auth.py), so a revocation still acts on the next request."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._keys: OrderedDict[str, KeyFacts] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def get(self, token_digest: str) -> KeyFacts | None:
        with self._lock:
            found = self._keys.get(token_digest)
            if found is not None:
                self._keys.move_to_end(token_digest)
            return found

    def put(self, token_digest: str, key: KeyFacts) -> None:
        with self._lock:
            self._keys[token_digest] = key
            self._keys.move_to_end(token_digest)
            while len(self._keys) > self._capacity:
                self._keys.popitem(last=False)

    def forget(self, token_digest: str) -> None:
        with self._lock:
            self._keys.pop(token_digest, None)


def revoke_api_key(db: Session, organization_id: str, key_id: str, expected_version: int | None) -> None:
    """At once: the key's next request is a 401."""
    load_for_change(db, organization_id, ApiKey, key_id, expected_version, what="API key").revoked_at = clock.now()
    db.flush()


def get_organization(db: Session, org: str) -> Organization:
    return db.get_one(Organization, org)


def update_organization(
    db: Session, org: str, data: dict, expected_version: int | None, defaults: Policy = DEFAULT_POLICY
) -> Organization:
    """Its name, and its booking policy's own fields (the defaults of its clinics and treatment types)."""
    organization = db.scalar(
        sa.select(Organization)
        .where(Organization.id == org)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert organization is not None  # the key's own organization
    check_version(organization, expected_version)
    if "name" in data:
        organization.name = data["name"]
    policies.set_own(db, org, defaults, organization, data.get("booking_policy"))
    db.flush()
    return organization
