"""Organizations and API keys: create, issue and resolve keys."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking.domain import clock
from booking.domain.errors import InvalidInput
from booking.domain.policy import DEFAULT_POLICY, Policy
from booking.services import policies
from booking.services.changes import check_version, load_for_change
from models import CHANNELS, SCOPES, ApiKey, Organization

KEY_PREFIX = "nbk_"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_api_key(
    db: Session, organization_id: str, name: str, scopes: Iterable[str], channel: str = "frontend"
) -> tuple[ApiKey, str]:
    """A new key; the clear token is returned once and never stored.

    A key is a booking frontend's unless asked for as `staff` (the trust is granted, never assumed)."""
    scopes = list(dict.fromkeys(scopes))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise InvalidInput({"scopes": [f"Each scope must be one of: {', '.join(SCOPES)}."]})
    if channel not in CHANNELS:
        raise InvalidInput({"channel": [f"Must be one of: {', '.join(CHANNELS)}."]})
    token = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        organization_id=organization_id,
        name=name,
        digest=digest(token),
        prefix=token[: len(KEY_PREFIX) + 6],
        scopes=scopes,
        channel=channel,
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


def find_key(db: Session, token: str) -> ApiKey | None:
    if not token.startswith(KEY_PREFIX) or len(token) > 200:
        return None
    return db.scalar(sa.select(ApiKey).where(ApiKey.digest == digest(token), ApiKey.revoked_at.is_(None)))


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
