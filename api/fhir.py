"""FHIR R4 read views under /fhir/R4: Practitioner, Location, Schedule, Slot, Appointment.

The same API keys (the `read` scope) and tenancy as /v1. Responses, errors included, are
application/fhir+json; errors are OperationOutcomes (a 400 for a bad search parameter). Two
answers stay problem+json because they happen outside these views: a 429 from the rate limiter
and a URL no route matches. The FHIR JSON itself is built in booking.formats.fhir.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlencode

import marshmallow as ma
import sqlalchemy as sa
from flask import current_app, request
from flask_smorest import abort
from werkzeug.exceptions import HTTPException

from booking.domain import clock
from booking.domain.cursors import encode_cursor
from booking.domain.errors import DomainError, InvalidInput
from booking.formats import fhir
from booking.services import availability_search
from models import Appointment, Clinic, Hold, Patient, Practitioner, TreatmentType
from models.staff import practitioner_clinics

from . import db, errors
from .auth import organization_id, requires
from .availability import settings
from .base import MAY_BE_ABSENT, Blueprint, Schema, get_or_404, scoped

log = logging.getLogger("needlebook.api")

FHIR_JSON = "application/fhir+json"
RELEASED = "2027-01-01"  # CapabilityStatement.date: when this statement last changed
MAX_COUNT = 200
FREE_SLOTS_PER_SEARCH = 100_000  # the window bounds the engine's work; this only lifts its page limit
# Free slots are computed by the engine, schedule by schedule: a search for them names its schedules,
# so that its cost is bounded by what the caller asked for, not by the size of the chain.
MAX_FREE_SCHEDULES = 10
YEARS = f"Years {clock.FIRST_YEAR} to {clock.LAST_YEAR}."  # of a date search value (booking.domain.clock)

blp = Blueprint(
    "fhir",
    __name__,
    url_prefix="/fhir/R4",
    description="FHIR R4 (application/fhir+json) read views of the schedule, for EHRs and "
    "scheduling integrations. Same API keys as /v1; see GET /fhir/R4/metadata.",
)


class FhirResourceSchema(ma.Schema):
    """A FHIR R4 resource, as the FHIR specification defines it for its `resourceType`."""

    class Meta:
        unknown = ma.INCLUDE  # documents the open object a resource is: additionalProperties

    resourceType = ma.fields.String(required=True)
    id = ma.fields.String(metadata={MAY_BE_ABSENT: True})  # a search Bundle has none

    @ma.post_dump(pass_original=True)
    def _as_built(self, data, original, **kwargs):
        return original


class FhirBundleSchema(FhirResourceSchema):
    """A FHIR searchset Bundle: `total` matches, this page in `entry`, the next page in `link`."""

    type = ma.fields.String()
    total = ma.fields.Integer()
    link = ma.fields.List(ma.fields.Dict())
    entry = ma.fields.List(ma.fields.Dict(), metadata={"description": "fullUrl, resource, search"})


class OperationOutcomeSchema(FhirResourceSchema):
    """A FHIR OperationOutcome: what went wrong, per issue."""

    issue = ma.fields.List(ma.fields.Dict())


def _outcome_doc(description: str) -> dict:
    return {"description": description, "content": {FHIR_JSON: {"schema": OperationOutcomeSchema}}}


def fhir_read(view):
    """requires("read"), with the errors documented as the OperationOutcomes they are here."""
    wrapper = requires("read")(view)
    wrapper._apidoc["manual_doc"]["responses"].update(
        {
            "400": _outcome_doc("A search parameter is unknown or malformed"),
            "401": _outcome_doc("No API key, or an unknown or revoked one"),
            "403": _outcome_doc("The API key lacks the read scope"),
            "404": _outcome_doc("No such resource (or another organization's)"),
            "default": _outcome_doc("Any other error"),
        }
    )
    return wrapper


# --- errors as OperationOutcomes --------------------------------------------------------------------


def _outcome(status: int, issues: list[tuple[str, str | None]], headers=None):
    response = current_app.json.response(fhir.operation_outcome(status, issues))
    response.status_code = status
    response.mimetype = FHIR_JSON
    response.headers.update(headers or {})
    return response


def _field_issues(field_errors: dict) -> list[tuple[str, str | None]]:
    return [
        (f"{field}: {' '.join(map(str, messages)) if isinstance(messages, list) else messages}", field)
        for field, messages in errors._flatten_locations(field_errors).items()
    ]


@blp.errorhandler(HTTPException)
def _http_error(error: HTTPException):
    status, data = error.code or 500, getattr(error, "data", None) or {}
    field_errors = data.get("errors") or data.get("messages")
    if status in (400, 422) and field_errors:  # an unknown or malformed search parameter (api/inputs.py: 422)
        return _outcome(400, _field_issues(field_errors))
    return _outcome(status, [(data.get("message") or error.description or error.name, None)], data.get("headers"))


@blp.errorhandler(DomainError)
def _domain_error(error: DomainError):
    if isinstance(error, InvalidInput):
        return _outcome(400, _field_issues(error.errors))
    return _outcome(404 if error.code == "not_found" else 400, [(error.detail, None)])


@blp.errorhandler(Exception)
def _unexpected(error: Exception):
    log.exception("unhandled error [request_id=%s] %s %s", errors.request_id(), request.method, request.path)
    return _outcome(
        500, [(f"An unexpected error occurred; it has been logged with this request id: {errors.request_id()}.", None)]
    )


@blp.after_request
def _fhir_json(response):
    if response.mimetype == "application/json":
        response.mimetype = FHIR_JSON
    return response


# --- search arguments and pages ----------------------------------------------------------------------


def _text(text: str) -> None:
    if not text.isprintable():  # a NUL would reach PostgreSQL, which refuses it in a string
        raise ma.ValidationError("Must be printable text.")


def Text(**kwargs):
    return ma.fields.String(validate=[ma.validate.Length(max=500), _text], **kwargs)


def _many(description: str, data_key: str | None = None):
    return ma.fields.List(
        Text(),
        load_default=list,
        data_key=data_key,
        metadata={"description": description + "; repeat or comma-separate (OR)"},
    )


class SearchArgs(Schema):
    count = ma.fields.Integer(
        data_key="_count",
        load_default=50,
        validate=ma.validate.Range(min=0),
        metadata={"description": f"Page size (default 50; more than {MAX_COUNT} gives {MAX_COUNT})"},
    )
    cursor = Text(
        data_key="_cursor", load_default=None, metadata={"description": "Opaque: follow the Bundle's `next` link"}
    )


class NamedSearchArgs(SearchArgs):
    ids = _many("Logical id", data_key="_id")
    name = ma.fields.List(
        Text(), load_default=list, metadata={"description": "Starts a word of the name, case-insensitive; repeat (AND)"}
    )


class ScheduleSearchArgs(SearchArgs):
    ids = _many("Logical id: {practitioner id}.{location id}", data_key="_id")
    actor = _many("Practitioner/{id} or Location/{id}")


class SlotSearchArgs(SearchArgs):
    schedule = _many("Schedule/{practitioner id}.{location id}")
    start = ma.fields.List(
        Text(),
        load_default=list,
        metadata={
            "description": "Slot start with a prefix (eq, ge, gt, le, lt); repeat to bound both ends (AND). Default "
            f"from today 00:00 UTC for 7 days; at most 31 days. {YEARS}"
        },
    )
    status = _many("free, busy or busy-tentative")
    service_type = _many("A treatment type id", data_key="service-type")


class AppointmentSearchArgs(SearchArgs):
    ids = _many("Logical id (appt-... or hold-...)", data_key="_id")
    date = ma.fields.List(
        Text(),
        load_default=list,
        metadata={
            "description": f"Start, with a prefix (eq, ge, gt, le, lt); repeat to bound both ends (AND). {YEARS}"
        },
    )
    practitioner = _many("Practitioner/{id} or the id")
    location = _many("Location/{id} or the id")
    status = _many("booked, arrived, fulfilled, cancelled, noshow, pending (hold), proposed (follow-up hold)")
    identifier = _many("A course plan's sessions: urn:needlebook:course-plan|{course plan id}, or the id")


def _base() -> str:
    return request.url_root.rstrip("/") + blp.url_prefix


def _bundle(resources: list[dict], total: int, next_key: str | None) -> dict:
    next_url = None
    if next_key is not None:
        query = [(k, v) for k, v in request.args.items(multi=True) if k != "_cursor"]
        next_url = f"{request.base_url}?{urlencode([*query, ('_cursor', encode_cursor(next_key))])}"
    return fhir.searchset(_base(), resources, total=total, self_url=request.url, next_url=next_url)


def _count(args) -> int:
    return min(args["count"], MAX_COUNT)


def _after(args) -> str | None:
    return fhir.search_cursor(args["cursor"]) if args["cursor"] else None


def _page_of_rows(queries: list, args) -> tuple[list, int, str | None]:
    """Keyset pages by id over one or more tenant-scoped queries (appointments and holds)."""
    session, count, after = db.session(), _count(args), _after(args)
    total = sum(session.scalar(sa.select(sa.func.count()).select_from(q.subquery())) for q in queries)
    rows: list[Any] = []
    for query in queries:
        model = query.column_descriptions[0]["entity"]
        if after is not None:
            query = query.where(model.id > after)
        rows += session.scalars(query.order_by(model.id).limit(count + 1))
    rows.sort(key=lambda row: row.id)
    return rows[:count], total, (rows[count - 1].id if len(rows) > count and count else None)


def _page_of_resources(resources: list[dict], args, key) -> tuple[list[dict], int, str | None]:
    """Keyset pages over resources computed in full (schedules, slots), ordered by `key`."""
    count, after = _count(args), _after(args)
    ordered = sorted(resources, key=key)
    remaining = [r for r in ordered if after is None or key(r) > after]
    next_key = key(remaining[count - 1]) if len(remaining) > count and count else None
    return remaining[:count], len(ordered), next_key


def _by_id(model, ids) -> dict:
    ids = set(ids)
    return {o.id: o for o in db.session().scalars(sa.select(model).where(model.id.in_(ids)))} if ids else {}


_FHIR_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _read_id(resource_id: str, what: str) -> str:
    """Our id for a read's FHIR id (either spelling); anything that cannot be an id is a 404."""
    if not _FHIR_ID.fullmatch(resource_id):
        abort(404, message=f"No {what} with id '{resource_id}'.")
    return fhir.api_id(resource_id)


def _word_starts(column, name: str):
    return sa.or_(column.istartswith(name, autoescape=True), column.icontains(" " + name, autoescape=True))


# --- views -------------------------------------------------------------------------------------------


@blp.route("/metadata")
@fhir_read
@blp.response(200, FhirResourceSchema, content_type=FHIR_JSON)
def metadata():
    """The CapabilityStatement: resources, interactions and search parameters

    Needs an API key with the `read` scope like every other FHIR request here.
    """
    return fhir.capability_statement(base=_base(), version=current_app.config["API_VERSION"], released=RELEASED)


@blp.route("/Practitioner/<resource_id>")
@fhir_read
@blp.response(200, FhirResourceSchema, content_type=FHIR_JSON)
def read_practitioner(resource_id):
    """Read a Practitioner"""
    return fhir.practitioner(get_or_404(Practitioner, _read_id(resource_id, "practitioner")))


@blp.route("/Practitioner")
@fhir_read
@blp.arguments(NamedSearchArgs, location="query", error_status_code=400)
@blp.response(200, FhirBundleSchema, content_type=FHIR_JSON)
def search_practitioners(args):
    """Search Practitioners by id or name"""
    return _named_search(Practitioner, args, fhir.practitioner)


@blp.route("/Location/<resource_id>")
@fhir_read
@blp.response(200, FhirResourceSchema, content_type=FHIR_JSON)
def read_location(resource_id):
    """Read a Location (a clinic, with its IANA zone in the timezone extension)"""
    return fhir.location(get_or_404(Clinic, _read_id(resource_id, "location"), what="location"))


@blp.route("/Location")
@fhir_read
@blp.arguments(NamedSearchArgs, location="query", error_status_code=400)
@blp.response(200, FhirBundleSchema, content_type=FHIR_JSON)
def search_locations(args):
    """Search Locations (clinics) by id or name"""
    return _named_search(Clinic, args, fhir.location)


def _named_search(model, args, to_resource) -> dict:
    query = scoped(model)
    if args["ids"]:
        query = query.where(model.id.in_([fhir.api_id(i) for i in fhir.tokens(args["ids"])]))
    for name in args["name"]:
        query = query.where(_word_starts(model.name, name))
    rows, total, next_key = _page_of_rows([query], args)
    return _bundle([to_resource(row) for row in rows], total, next_key)


@blp.route("/Schedule/<resource_id>")
@fhir_read
@blp.response(200, FhirResourceSchema, content_type=FHIR_JSON)
def read_schedule(resource_id):
    """Read a Schedule: one practitioner at one clinic, id {practitioner id}.{location id}"""
    _read_id(resource_id, "schedule")  # well-formed, or a 404
    found = _schedules(ids={resource_id})
    if not found:
        abort(404, message=f"No schedule with id '{resource_id}'.")
    return fhir.schedule(*found[0])


@blp.route("/Schedule")
@fhir_read
@blp.arguments(ScheduleSearchArgs, location="query", error_status_code=400)
@blp.response(200, FhirBundleSchema, content_type=FHIR_JSON)
def search_schedules(args):
    """Search Schedules by actor (a Practitioner or a Location)"""
    actors = fhir.references(args["actor"], "actor", ("Practitioner", "Location"))
    found = _schedules(
        ids=fhir.tokens(args["ids"]) or None,
        practitioners=actors["Practitioner"] or None,
        clinics=actors["Location"] or None,
    )
    resources, total, next_key = _page_of_resources([fhir.schedule(*s) for s in found], args, lambda r: r["id"])
    return _bundle(resources, total, next_key)


def _schedules(*, ids=None, practitioners=None, clinics=None) -> list[tuple]:
    """(practitioner, clinic, treatment types) of the caller's live practitioner-at-clinic pairs."""
    query = (
        sa.select(Practitioner, Clinic)
        .join(practitioner_clinics, practitioner_clinics.c.practitioner_id == Practitioner.id)
        .join(Clinic, Clinic.id == practitioner_clinics.c.clinic_id)
        .where(
            Practitioner.organization_id == organization_id(),
            Practitioner.archived_at.is_(None),
            Clinic.organization_id == organization_id(),
            Clinic.archived_at.is_(None),
        )
        .order_by(Practitioner.id, Clinic.id)
    )
    pairs = None
    if ids is not None:
        pairs = {pair for pair in map(fhir.parse_schedule_id, ids) if pair}
        query = query.where(Practitioner.id.in_({p for p, _ in pairs}), Clinic.id.in_({c for _, c in pairs}))
    if practitioners is not None:
        query = query.where(Practitioner.id.in_(practitioners))
    if clinics is not None:
        query = query.where(Clinic.id.in_(clinics))
    found = [(p, c) for p, c in db.session().execute(query) if pairs is None or (p.id, c.id) in pairs]
    return [(p, c, [t for t in p.treatment_types if t.archived_at is None]) for p, c in found]


@blp.route("/Slot")
@fhir_read
@blp.arguments(SlotSearchArgs, location="query", error_status_code=400)
@blp.response(200, FhirBundleSchema, content_type=FHIR_JSON)
def search_slots(args):
    """Search Slots: free ones from the availability engine, busy ones from appointments and holds

    A search that includes free Slots (the default) must name 1 to 10 schedules; busy ones can be
    searched across every schedule.

    A free Slot is a start the engine offers for one treatment type (its `serviceType`) with
    this practitioner at this clinic, exactly as /v1/availability?practitioner_id=... gives it:
    from the patient's arrival (numbing) to their leaving. Busy Slots are the appointments
    (busy) and live holds (busy-tentative) of the practitioner at the clinic.
    """
    start, end = fhir.slot_window(fhir.date_bounds(args["start"], "start"), clock.now())
    references = fhir.references(args["schedule"], "schedule", ("Schedule",))["Schedule"]
    statuses = fhir.tokens(args["status"]) or {"free", "busy", "busy-tentative"}
    unknown = statuses - set(fhir.SLOT_STATUSES)
    if unknown:
        raise InvalidInput({"status": [f"Unknown SlotStatus: {', '.join(sorted(unknown))}."]})
    if "free" in statuses and not MAX_FREE_SCHEDULES >= len(references) > 0:
        raise InvalidInput(
            {
                "schedule": [
                    f"Free slots are searched per schedule: name 1 to {MAX_FREE_SCHEDULES} (schedule=Schedule/"
                    "{practitioner id}.{location id}, from a Schedule search), "
                    "or ask only for status=busy,busy-tentative."
                ]
            }
        )
    wanted = {fhir.api_id(t) for t in fhir.tokens(args["service_type"])}
    resources = []
    for practitioner, clinic, types in _schedules(ids=references or None):
        if "free" in statuses and start < end:
            resources += _free_slots(
                practitioner, clinic, [t for t in types if not wanted or t.id in wanted], start, end
            )
        resources += _busy_slots(practitioner, clinic, wanted or None, statuses, start, end)
    page, total, next_key = _page_of_resources(resources, args, fhir.slot_key)
    return _bundle(page, total, next_key)


def _free_slots(practitioner, clinic, types, start, end) -> list[dict]:
    found = []
    for treatment_type in types:
        query = availability_search.Query(
            treatment_type_id=treatment_type.id,
            start=start,
            end=end,
            clinic_id=clinic.id,
            practitioner_id=practitioner.id,
            limit=FREE_SLOTS_PER_SEARCH,
        )
        slots, _, _ = availability_search.search(db.session(), organization_id(), query, settings())
        found += [fhir.free_slot(s, treatment_type=treatment_type, zone_name=clinic.timezone) for s in slots]
    return found


def _busy_slots(practitioner, clinic, type_ids, statuses, start, end) -> list[dict]:
    bookings: list[Appointment | Hold] = []
    if "busy" in statuses:  # a cancelled appointment frees its time; a no-show's stays taken
        bookings += db.session().scalars(
            _at(scoped(Appointment), Appointment, practitioner, clinic, start, end).where(
                Appointment.status != "cancelled"
            )
        )
    if "busy-tentative" in statuses:
        bookings += db.session().scalars(_at(_live_holds(), Hold, practitioner, clinic, start, end))
    types = _by_id(TreatmentType, (b.treatment_type_id for b in bookings))
    return [
        fhir.busy_slot(b, treatment_type=types[b.treatment_type_id], tentative=isinstance(b, Hold))
        for b in bookings
        if type_ids is None or b.treatment_type_id in type_ids
    ]


def _at(query, model, practitioner, clinic, start, end):
    return query.where(
        model.practitioner_id == practitioner.id,
        model.clinic_id == clinic.id,
        model.starts_at >= start,
        model.starts_at < end,
    )


def _live_holds():
    return scoped(Hold).where(Hold.live(clock.now()))


@blp.route("/Appointment/<resource_id>")
@fhir_read
@blp.response(200, FhirResourceSchema, content_type=FHIR_JSON)
def read_appointment(resource_id):
    """Read an Appointment (appt-...), or a live hold shown as one (hold-...)"""
    target = _read_id(resource_id, "appointment")
    if target.startswith("hold_"):
        hold = db.session().scalar(_live_holds().where(Hold.id == target))
        if hold is None:
            abort(404, message=f"No appointment with id '{resource_id}'.")
        return _appointments([hold])[0]
    return _appointments([get_or_404(Appointment, target)])[0]


@blp.route("/Appointment")
@fhir_read
@blp.arguments(AppointmentSearchArgs, location="query", error_status_code=400)
@blp.response(200, FhirBundleSchema, content_type=FHIR_JSON)
def search_appointments(args):
    """Search Appointments (and live holds) by date, practitioner, location and status"""
    statuses = fhir.tokens(args["status"])
    unknown = statuses - set(fhir.FHIR_APPOINTMENT_STATUSES)
    if unknown:
        raise InvalidInput({"status": [f"Unknown AppointmentStatus: {', '.join(sorted(unknown))}."]})
    queries = []
    appointment_statuses = [ours for ours, theirs in fhir.APPOINTMENT_STATUS.items() if theirs in statuses]
    if appointment_statuses or not statuses:
        query = scoped(Appointment)
        queries.append(query.where(Appointment.status.in_(appointment_statuses)) if statuses else query)
    hold_sources = [ours for ours, theirs in fhir.HOLD_STATUS.items() if theirs in statuses]
    if hold_sources or not statuses:
        queries.append(_live_holds().where(Hold.source.in_(hold_sources)) if statuses else _live_holds())
    lower, upper = fhir.date_bounds(args["date"], "date")
    practitioners = fhir.references(args["practitioner"], "practitioner", ("Practitioner",))["Practitioner"]
    clinics = fhir.references(args["location"], "location", ("Location",))["Location"]
    ids = {fhir.api_id(i) for i in fhir.tokens(args["ids"])}
    plans = fhir.tokens(args["identifier"])
    filtered = []
    for query in queries:
        model = query.column_descriptions[0]["entity"]
        conditions = [
            model.starts_at >= lower if lower else None,
            model.starts_at < upper if upper else None,
            model.practitioner_id.in_(practitioners) if practitioners else None,
            model.clinic_id.in_(clinics) if clinics else None,
            model.id.in_(ids) if ids else None,
            model.course_plan_id.in_(plans) if plans else None,
        ]
        filtered.append(query.where(*(c for c in conditions if c is not None)))
    rows, total, next_key = _page_of_rows(filtered, args)
    return _bundle(_appointments(rows), total, next_key)


def _appointments(bookings) -> list[dict]:
    """Appointments and holds as FHIR Appointments, their related objects loaded in three queries."""
    practitioners = _by_id(Practitioner, (b.practitioner_id for b in bookings))
    patients = _by_id(Patient, (b.patient_id for b in bookings if b.patient_id is not None))
    types = _by_id(TreatmentType, (b.treatment_type_id for b in bookings))
    return [
        fhir.appointment(
            b,
            practitioner_obj=practitioners[b.practitioner_id],
            patient=patients.get(b.patient_id) if b.patient_id is not None else None,
            treatment_type=types[b.treatment_type_id],
        )
        for b in bookings
    ]
