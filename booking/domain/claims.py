"""The keys of claims, and whether a pool has a unit free.

A claim names what it keeps busy as `<kind>:<id>` (`room:rm_x`, `practitioner:prac_x`); a
pooled resource (a clinic's numbing chairs, its devices) is claimed one unit at a time, as
`<kind>:<id>#<n>` for n in 1..capacity (`numbing:cln_x#2`). Every key is built and read here.
"""

from __future__ import annotations

from typing import NamedTuple

UNIT = "#"


class ClaimKey(NamedTuple):
    kind: str  # practitioner, room, patient, numbing, device
    object_id: str
    unit: int | None = None  # the unit of a pool; None for a single resource

    @property
    def resource(self) -> str:
        """The resource the key names, without its unit (the pool, for a unit)."""
        return claim_key(self.kind, self.object_id)


def claim_key(kind: str, object_id: str, unit: int | None = None) -> str:
    """'room:rm_x', or 'numbing:cln_x#2' for unit 2 of a pool."""
    return f"{kind}:{object_id}" if unit is None else f"{kind}:{object_id}{UNIT}{unit}"


def parse_claim_key(key: str) -> ClaimKey:
    """The parts of a key made by claim_key()."""
    kind, _, rest = key.partition(":")
    object_id, separator, unit = rest.partition(UNIT)
    return ClaimKey(kind, object_id, int(unit) if separator else None)


def unit_prefix(pool: str) -> str:
    """What the keys of a pool's units start with ('numbing:cln_x#'): a prefix match finds them all."""
    return f"{pool}{UNIT}"


def free_unit(pool: str, capacity: int, used: set[str]) -> str | None:
    """The first unit of the pool that no claim in `used` holds, or None when the pool is full.

    Every unit in use counts against the capacity, also one numbered above a capacity that
    has since been lowered, so shrinking a pool never overbooks it; a pool of no units (a
    clinic counting 0 devices) is never free.
    """
    if len(used) >= capacity:
        return None
    units = (f"{unit_prefix(pool)}{n}" for n in range(1, capacity + 1))
    return next((unit for unit in units if unit not in used), None)
