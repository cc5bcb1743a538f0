"""Shared pieces of the HTTP layer: blueprint, schemas, tenancy-scoped loading, pagination."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import flask_smorest
import marshmallow as ma
import sqlalchemy as sa
from flask_smorest import abort
from webargs.flaskparser import FlaskParser

from booking.domain import clock
from booking.domain.cursors import decode_cursor, encode_cursor
from booking.domain.weekly import format_hhmm, parse_hhmm
from booking.services import changes
from booking.services.queries import of_organization

from . import db
from .auth import organization_id

# A response field that may be left out; every other field of a response schema is always there
# (api/conventions.py marks them required): `metadata={MAY_BE_ABSENT: True}`.
MAY_BE_ABSENT = "may_be_absent"


class Parser(FlaskParser):
    # A mistyped query parameter (`?emial=`) is a 422, not a silently unfiltered list.
    DEFAULT_UNKNOWN_BY_LOCATION = {  # noqa: RUF012 - webargs declares it an instance attribute; never mutated
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": ma.RAISE,
        "querystring": ma.RAISE,
    }

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        abort(400, message=f"The body is not valid JSON: {error}.", code="malformed_json")

    def _raw_load_json(self, req):
        try:
            return super()._raw_load_json(req)
        except RecursionError:  # json.loads gives up on very deep nesting: a client error, not a 500
            abort(400, message="The body is not valid JSON: it is nested too deeply.", code="malformed_json")


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()


class Schema(ma.Schema):
    """Unknown fields are refused (marshmallow's RAISE), so a typo is a 422, not ignored."""

    class Meta:
        unknown = ma.RAISE
        ordered = True


class LocalTime(ma.fields.String):
    """A local wall-clock time 'HH:MM', loaded as minutes after midnight."""

    def __init__(self, *, end_of_day: bool = False, metadata=None, **kwargs):
        metadata = {
            "pattern": r"^([01]\d|2[0-3]):[0-5]\d$" + ("|^24:00$" if end_of_day else ""),
            "example": "17:00" if end_of_day else "09:00",
            **(metadata or {}),
        }
        super().__init__(metadata=metadata, **kwargs)
        self.end_of_day = end_of_day

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else format_hhmm(value)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return parse_hhmm(text, allow_end_of_day=self.end_of_day)
        except ValueError as exc:
            raise ma.ValidationError(str(exc)) from exc


class Whole(ma.fields.Nested):
    """A nested object that must be complete even inside a partial (PATCH) schema.

    marshmallow hands `partial=True` down to nested schemas, which would let a PATCH
    store an opening-hours entry without an `end` or a closure without an `end_date`.
    """

    def _deserialize(self, value, attr, data, partial=None, **kwargs):
        return super()._deserialize(value, attr, data, partial=False, **kwargs)


class FullMatch(ma.validate.Regexp):
    """A Regexp the whole string must match: re.match with '$' lets a trailing newline through.

    The pattern stays ECMA-compatible for the OpenAPI document.
    """

    def __call__(self, value):
        if self.regex.fullmatch(value) is None:
            raise ma.ValidationError(self._format_error(value))
        return value


class InRange(ma.fields.Field[Any]):
    """A date or instant field that refuses values outside the API's one range of years
    (booking.domain.clock), and says so in its OpenAPI description."""

    def __init__(self, *args, metadata=None, **kwargs):
        metadata = dict(metadata or {})
        note = f"Years {clock.FIRST_YEAR} to {clock.LAST_YEAR}."
        described = metadata.get("description", "").rstrip(".")
        metadata["description"] = f"{described}. {note}" if described else note
        super().__init__(*args, metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        loaded = super()._deserialize(value, attr, data, **kwargs)
        if not clock.in_range(loaded):
            raise ma.ValidationError(clock.RANGE_MESSAGE)
        return loaded


class Instant(InRange, ma.fields.AwareDateTime):
    """An RFC 3339 instant that must carry an offset (a naive timestamp is a 422), in the range."""

    def __init__(self, **kwargs):
        super().__init__(format="iso", **kwargs)


class Day(InRange, ma.fields.Date):
    """A calendar date, YYYY-MM-DD, in the range."""


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ma.ValidationError("Must not be blank.")


class ClinicInstant(Instant):
    """An instant shown with the offset of the clinic of the object it belongs to."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return super()._serialize(clock.shown_in(value, ZoneInfo(obj.clinic.timezone)), attr, obj, **kwargs)


def Secret(description: str, *, deprecated_for: str | None = None, **kwargs):
    """A one-time secret in the answer that creates it; null in a replay of that answer.

    Every answer that shows one calls it `secret`; `deprecated_for="secret"` marks an older
    name kept beside it with the same value, so integrations written against it still work."""
    metadata: dict[str, Any] = {
        "description": (
            f"{description}. Shown in this answer only: it is stored nowhere in clear, so a replay of this POST "
            "(the same Idempotency-Key) answers null here, with `secret_withheld: true`."
        )
    }
    if deprecated_for:
        metadata["description"] = (
            f"Deprecated: the same value as `{deprecated_for}`; read that. " + metadata["description"]
        )
        metadata["deprecated"] = True
    return ma.fields.String(dump_only=True, allow_none=True, metadata=metadata, **kwargs)


def SecretWithheld():
    return ma.fields.Boolean(
        dump_only=True,
        metadata={
            "description": (
                "Present and true only in a replay (Idempotency-Key): the secret is not in this answer. Revoke and "
                "create another if the first answer was lost."
            ),
            MAY_BE_ABSENT: True,
        },
    )


def Name(**kwargs):
    return ma.fields.String(validate=[ma.validate.Length(min=1, max=200), _not_blank], **kwargs)


def Id(**kwargs):
    return ma.fields.String(validate=ma.validate.Length(min=1, max=40), **kwargs)


def get_or_404(model, object_id: str, *, what: str | None = None):
    """Load one object of the caller's organization; anything else is the same 404."""
    return changes.load(db.session(), organization_id(), model, object_id, what=what)


def scoped(model):
    """SELECT of the caller's organization's live rows of `model`."""
    return of_organization(model, organization_id())


class ListArgs(Schema):
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(1, 200))
    cursor = ma.fields.String(load_default=None, metadata={"description": "`next_cursor` of the previous page"})
    updated_since = Instant(
        load_default=None, metadata={"description": "Only objects changed at or after this instant"}
    )


class AuditListArgs(ListArgs):
    include_revoked = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "Also list the revoked ones, with `revoked_at` set (for an audit)"},
    )


def audited(model, args: dict):
    """SELECT of the organization's `model` rows: the live ones, or with `include_revoked` all of them."""
    if args.get("include_revoked"):
        return sa.select(model).where(model.organization_id == organization_id())
    return scoped(model)


# What every DELETE leaves behind, said in each one's OpenAPI description (and the README).
GONE = (
    "From then on its GET, PATCH and DELETE are a 404 `not_found`, exactly as if it had never existed, and "
    "its list leaves it out."
)
GONE_BUT_AUDITED = GONE + " The list shows it again, with `revoked_at`, with `include_revoked=true` (for an audit)."


def page_schema(item_schema: type[ma.Schema]) -> type[ma.Schema]:
    """The envelope of a collection: `data` and the cursor of the next page."""
    return type(
        f"{item_schema.__name__.removesuffix('Schema')}PageSchema",
        (ma.Schema,),
        {
            "data": ma.fields.List(ma.fields.Nested(item_schema), required=True),
            "next_cursor": ma.fields.String(
                allow_none=True, required=True, metadata={"description": "null on the last page"}
            ),
        },
    )


def paginate(query, model, args: dict) -> dict:
    """Keyset pagination by id (ids are time-ordered): stable while rows are inserted."""
    if args.get("updated_since") is not None:
        query = query.where(model.updated_at >= args["updated_since"])
    if args.get("cursor"):
        query = query.where(model.id > _decode_cursor(args["cursor"]))
    limit = args["limit"]
    rows = list(db.session().scalars(query.order_by(model.id).limit(limit + 1)))
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return {"data": rows[:limit], "next_cursor": next_cursor}


_ID = re.compile(r"\A[a-z]+_[0-9a-z]{26}\Z")


def _decode_cursor(cursor: str) -> str:
    last_id = decode_cursor(cursor) or ""
    if not _ID.match(last_id):
        abort(422, errors={"cursor": ["Invalid cursor; pass the next_cursor of a previous page."]})
    return last_id


def local_datetime(value: datetime | None, zone) -> datetime | None:
    return None if value is None else clock.shown_in(value, zone)
