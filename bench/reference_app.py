"""The reference: the least work an availability answer needs, outside Flask.

    DATABASE_URL=postgresql://... gunicorn --workers 2 bench.reference_app:app

A plain WSGI callable answering `GET /v1/availability` with the product's query arguments
(`treatment_type_id`, `start`, `end`, optional `clinic_id` (none: every clinic of the
treatment type's organization), `practitioner_id`, `limit`) and the product's slots
(`{"data": [...], "reason": null}`), for bench/run.py to measure the product against:

- one round trip to PostgreSQL per request: psycopg's pipeline mode sends the seven
  statements (treatment type, clinics, rooms, qualified staff with their shifts, opening
  hours and closures, time off and external busy times, live claims) and reads them after
  one sync, on one autocommit connection per worker (no BEGIN, no pre-ping, prepared
  statements after the first requests). Claims are matched by exact key, pool units
  included (`numbing:<clinic>#1..capacity`, generated in SQL), so every claim lookup is an
  index range bounded by time;
- the same engine: booking.domain.availability.find_slots over the same Search the product
  builds (booking.domain.intervals for the hours), so the answers are the same;
- orjson for the response.

What it leaves out, knowingly: the API key and the rate limiter (the product's cost of
those is part of what is measured against this), argument validation beyond parsing,
`patient_id`, `room_id` and `order=evening`, and units numbered above a pool's current
capacity (a lowered capacity; the bench data never lowers one). bench/run.py checks that
it answers exactly what the product answers before it measures it.
"""

from __future__ import annotations

import os
import urllib.parse
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import orjson
import psycopg

from booking.domain.availability import PractitionerHours, Search, find_slots
from booking.domain.claims import claim_key
from booking.domain.intervals import clinic_open, staff_open
from booking.domain.policy import next_on_grid
from booking.domain.timing import Timing
from booking.domain.weekly import Shift

REACH = timedelta(days=1)  # as booking.services.queries.CLAIM_REACH
_INSTANT = timedelta(microseconds=1)
GRID = int(os.environ.get("AVAILABILITY_GRID_MINUTES", "15"))
NOTICE = timedelta(minutes=int(os.environ.get("AVAILABILITY_MIN_NOTICE_MINUTES", "120")))
HORIZON = timedelta(days=int(os.environ.get("AVAILABILITY_HORIZON_DAYS", "90")))

# The clinics of the search: one, or every clinic of the treatment type's organization.
_CLINICS = """
    SELECT c.id FROM clinics c JOIN treatment_types t ON t.organization_id = c.organization_id
    WHERE t.id = %(tt)s AND c.archived_at IS NULL AND (%(clinic)s::text IS NULL OR c.id = %(clinic)s)
"""
_STAFF = f"""
    SELECT pc.clinic_id, p.id, w.weekday, w.start_minute, w.end_minute
    FROM practitioners p
    JOIN practitioner_clinics pc ON pc.practitioner_id = p.id AND pc.clinic_id IN ({_CLINICS})
    JOIN practitioner_treatment_types pt ON pt.practitioner_id = p.id AND pt.treatment_type_id = %(tt)s
    LEFT JOIN working_hours w ON w.practitioner_id = p.id AND w.clinic_id = pc.clinic_id
    WHERE p.archived_at IS NULL AND (%(practitioner)s::text IS NULL OR p.id = %(practitioner)s)
    ORDER BY p.id
"""
STATEMENTS = {
    "treatment_type": "SELECT id, kind, numbing_minutes, prep_minutes, procedure_minutes, aftercare_minutes, "
    "turnover_minutes, required_capability FROM treatment_types WHERE id = %(tt)s AND archived_at IS NULL",
    "clinics": "SELECT id, timezone, numbing_area_capacity, device_count FROM clinics "
    f"WHERE id IN ({_CLINICS}) ORDER BY id",
    "rooms": f"SELECT clinic_id, id, capabilities FROM rooms WHERE clinic_id IN ({_CLINICS}) "
    "AND archived_at IS NULL ORDER BY id",
    "staff": _STAFF,
    "opening": "SELECT clinic_id, weekday, start_minute, end_minute, NULL::date, NULL::date FROM clinic_opening_hours "
    f"WHERE clinic_id IN ({_CLINICS}) UNION ALL SELECT clinic_id, NULL, NULL, NULL, start_date, end_date "
    f"FROM clinic_closures WHERE clinic_id IN ({_CLINICS})",
    "unavailable": f"""
        WITH staff AS (SELECT DISTINCT id FROM ({_STAFF}) s (clinic_id, id, weekday, start_minute, end_minute))
        SELECT practitioner_id, starts_at, ends_at FROM time_off
        WHERE practitioner_id IN (SELECT id FROM staff) AND starts_at < %(reach_end)s AND ends_at > %(reach_start)s
        UNION ALL
        SELECT practitioner_id, starts_at, ends_at FROM external_busy
        WHERE practitioner_id IN (SELECT id FROM staff) AND starts_at < %(reach_end)s AND ends_at > %(reach_start)s
    """,
    "claims": f"""
        WITH staff AS (SELECT DISTINCT id FROM ({_STAFF}) s (clinic_id, id, weekday, start_minute, end_minute)),
        keys AS (
            SELECT 'practitioner:' || id AS k FROM staff
            UNION ALL SELECT 'room:' || id FROM rooms WHERE clinic_id IN ({_CLINICS}) AND archived_at IS NULL
            UNION ALL SELECT 'numbing:' || c.id || '#' || n FROM clinics c,
                generate_series(1, c.numbing_area_capacity) n WHERE c.id IN ({_CLINICS})
            UNION ALL SELECT 'device:' || c.id || '#' || n FROM clinics c,
                generate_series(1, c.device_count) n WHERE c.id IN ({_CLINICS})
        )
        SELECT resource, timezone('UTC', starts_at), timezone('UTC', ends_at) FROM claims
        WHERE resource = ANY(ARRAY(SELECT k FROM keys))
          AND starts_at >= %(reach_start)s AND starts_at < %(reach_end)s AND ends_at > %(reach_start)s
          AND (expires_at IS NULL OR expires_at > %(now)s)
    """,
}


def clinic_start(start: datetime, now: datetime, zone: ZoneInfo) -> datetime:
    """Where a clinic's window starts for the bench's staff key, as the product's booking policy puts
    it (booking.domain.policy.window: the notice, then the next start on the clinic's grid). The
    practitioners' preference counts their load from here: from now + notice instead, a claim in
    between would count for some and rank them otherwise than the product does."""
    return max(start, next_on_grid(max(now + NOTICE, now + _INSTANT), GRID, zone))


class Reference:
    def __init__(self, url: str) -> None:
        self.url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.conn: psycopg.Connection | None = None

    def connection(self) -> psycopg.Connection:
        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(self.url, autocommit=True)
        return self.conn

    def load(self, params: dict) -> dict[str, list]:
        """Every statement in one round trip (pipeline mode, one sync)."""
        conn = self.connection()
        with conn.pipeline() as pipeline:
            cursors = {name: conn.cursor() for name in STATEMENTS}
            for name, statement in STATEMENTS.items():
                cursors[name].execute(statement, params)
            pipeline.sync()
            return {name: cursor.fetchall() for name, cursor in cursors.items()}

    def search(self, query: dict[str, str]) -> list[dict]:
        now = datetime.now(UTC)
        start = max(datetime.fromisoformat(query["start"]), now + NOTICE)
        end = min(datetime.fromisoformat(query["end"]), now + HORIZON)
        limit = int(query.get("limit", 50))
        if start >= end:
            return []
        params = {
            "tt": query["treatment_type_id"],
            "clinic": query.get("clinic_id"),
            "practitioner": query.get("practitioner_id"),
            "reach_start": start - REACH,
            "reach_end": end + REACH,
            "now": now,
        }
        rows = self.load(params)
        if not rows["treatment_type"]:
            raise LookupError("treatment_type_id")
        tt_id, kind, *minutes, capability = rows["treatment_type"][0]
        timing = Timing(kind, *minutes)
        combine = datetime.combine
        busy: dict[str, list] = defaultdict(list)
        for resource, claim_start, claim_end in rows["claims"]:
            busy[resource].append(
                (combine(claim_start.date(), claim_start.time(), UTC), combine(claim_end.date(), claim_end.time(), UTC))
            )
        off: dict[str, list] = defaultdict(list)
        for practitioner, off_start, off_end in rows["unavailable"]:
            off[practitioner].append((off_start, off_end))
        rooms: dict[str, list[str]] = defaultdict(list)
        for clinic, room, capabilities in rows["rooms"]:
            if not capability or capability in capabilities:
                rooms[clinic].append(room)
        staff: dict[str, dict[str, list]] = defaultdict(dict)
        for clinic, practitioner, *shift in rows["staff"]:
            mine = staff[clinic].setdefault(practitioner, [])
            if shift[0] is not None:
                mine.append(shift)
        opening: dict[str, list] = defaultdict(list)
        closures: dict[str, list] = defaultdict(list)
        for clinic, weekday, first, last, closed_from, closed_to in rows["opening"]:
            if weekday is None:
                closures[clinic].append((closed_from, closed_to))
            else:
                opening[clinic].append((weekday, first, last))
        found = []
        zones = {}
        window_start = start
        for clinic, zone, numbing, devices in rows["clinics"]:
            zones[clinic] = ZoneInfo(zone)
            start = clinic_start(window_start, now, zones[clinic])
            if start >= end:
                continue
            hours_of_clinic = clinic_open(
                opening=[Shift(*o, zone=zone) for o in opening[clinic]],
                closures=closures[clinic],
                zone=zone,
                start=start,
                end=end + REACH,
            )
            hours = [
                PractitionerHours(
                    p,
                    staff_open(
                        hours_of_clinic,
                        working=[Shift(*s, zone=zone) for s in shifts],
                        time_off=off.get(p, []),
                        start=start,
                        end=end + REACH,
                    ),
                )
                for p, shifts in staff[clinic].items()
            ]

            def load_of(h: PractitionerHours, start: datetime = start) -> tuple[float, str]:
                claimed = busy.get(claim_key("practitioner", h.practitioner_id), [])
                inside = ((min(e, end) - max(s, start)).total_seconds() for s, e in claimed if s < end and e > start)
                return (sum(inside, 0.0), h.practitioner_id)

            # The product's preference without a patient: the least time claimed within the window first.
            hours.sort(key=load_of)
            result = find_slots(
                Search(
                    clinic_id=clinic,
                    zone=zone,
                    treatment_type_id=tt_id,
                    timing=timing,
                    start=start,
                    end=end,
                    practitioners=hours,
                    rooms=rooms[clinic],
                    busy=busy,
                    numbing_seats=numbing,
                    devices=devices,
                    step_minutes=GRID,
                    limit=limit,
                )
            )
            found += result.slots
        found = sorted(found, key=lambda slot: slot.starts_at)[:limit]
        return [
            {
                "clinic_id": s.clinic_id,
                "practitioner_id": s.practitioner_id,
                "room_id": s.room_id,
                "treatment_type_id": s.treatment_type_id,
                "starts_at": s.starts_at.astimezone(zones[s.clinic_id]),
                "procedure_starts_at": s.procedure_starts_at.astimezone(zones[s.clinic_id]),
                "ends_at": s.ends_at.astimezone(zones[s.clinic_id]),
            }
            for s in found
        ]


def make_app(url: str):
    reference = Reference(url)

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"status":"ok"}']
        if path != "/v1/availability":
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"code":"not_found"}']
        query = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))
        try:
            body = orjson.dumps({"data": reference.search(query), "reason": None})
        except (KeyError, ValueError, LookupError) as bad:
            start_response("422 Unprocessable Entity", [("Content-Type", "application/json")])
            return [orjson.dumps({"code": "validation_error", "detail": str(bad)})]
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    app.reference = reference  # type: ignore[attr-defined]
    return app


app = make_app(os.environ["DATABASE_URL"]) if "DATABASE_URL" in os.environ else SimpleNamespace()
