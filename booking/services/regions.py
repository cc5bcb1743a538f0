"""Which country an organization is in, to read the phone numbers written without +<country code>.

Patients belong to the organization, not to a clinic, so it is the country all its clinics lie
in, by their time zones, or none. The tz database says which country each zone is in
(zone.tab, shipped in the `tzdata` package).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from sqlalchemy.orm import Session

from booking.domain.phones import one_country
from booking.services.queries import of_organization
from models import Clinic


@cache
def country_of_zone() -> dict[str, str]:
    """IANA zone -> ISO 3166 country code (`Europe/London` -> `GB`); zone.tab names one country per
    zone (zone1970.tab several for a shared one), and no links (`US/Eastern`), which read as unknown."""
    table = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text(encoding="utf-8")
    rows = (line.split("\t") for line in table.splitlines() if line and not line.startswith("#"))
    return {row[2]: row[0] for row in rows}


def phone_region(db: Session, org: str) -> str | None:
    zones = db.scalars(of_organization(Clinic, org).with_only_columns(Clinic.timezone).distinct()).all()
    return one_country(zones, country_of_zone())
