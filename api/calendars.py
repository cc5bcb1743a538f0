"""iCalendar feeds (read with a feed token in the URL) and the tokens that open them."""

from __future__ import annotations

import marshmallow as ma
from flask import Response, current_app, url_for
from flask.views import MethodView

from booking.domain import clock
from booking.domain.weekly import practitioner_zone
from booking.formats import ical_feed
from booking.integrations import external_calendars
from models import FEED_OWNERS, CalendarFeed, ExternalCalendar, Practitioner

from . import db, etags, idempotency
from .auth import organization_id, requires
from .base import (
    GONE,
    GONE_BUT_AUDITED,
    AuditListArgs,
    Blueprint,
    Id,
    ListArgs,
    Name,
    Schema,
    Secret,
    SecretWithheld,
    audited,
    get_or_404,
    page_schema,
    paginate,
    scoped,
)

blp = Blueprint(
    "calendars",
    __name__,
    url_prefix="/v1",
    description=(
        "iCalendar feeds of a practitioner's, room's or clinic's appointments and holds, for calendar apps: "
        "each read with a feed token of its own in the URL (calendar apps cannot send an API key)"
    ),
)

_ENDPOINT = {
    "practitioner": "calendars.practitioner_feed",
    "room": "calendars.room_feed",
    "clinic": "calendars.clinic_feed",
}


class FeedSchema(Schema):
    id = ma.fields.String(dump_only=True)
    owner_type = ma.fields.String(required=True, validate=ma.validate.OneOf(FEED_OWNERS))
    owner_id = Id(required=True)
    name = Name(allow_none=True, metadata={"description": "Who or what the feed is for, e.g. the phone it is on"})
    prefix = ma.fields.String(dump_only=True, metadata={"description": "First characters of the token"})
    revoked_at = ma.fields.AwareDateTime(dump_only=True, allow_none=True)
    created_at = ma.fields.AwareDateTime(dump_only=True)


class NewFeedSchema(FeedSchema):
    secret = Secret("The feed token (ics_...), also in `url`")
    token = Secret("The feed token (ics_...)", deprecated_for="secret")
    url = Secret("The feed's address, token included: subscribe to it in a calendar app")
    secret_withheld = SecretWithheld()


class TokenArgs(ma.Schema):
    token = ma.fields.String(required=True, metadata={"description": "The feed token (ics_...)"})


FeedPageSchema = page_schema(FeedSchema)
ICS_DOC = {
    "security": [{"feedToken": []}],
    "responses": {
        "200": {
            "description": "An iCalendar (RFC 5545) document",
            "content": {"text/calendar": {"schema": {"type": "string"}}},
            "headers": {
                "Cache-Control": {
                    "description": "`private, max-age=300`: calendar apps may keep the feed five minutes.",
                    "schema": {"type": "string"},
                    "required": True,
                },
                "Content-Disposition": {
                    "description": "`inline` with a file name for the owner.",
                    "schema": {"type": "string"},
                    "required": True,
                },
            },
        }
    },
}
# The security scheme the feeds document (registered in api/__init__.py).
FEED_TOKEN_SCHEME = {
    "type": "apiKey",
    "in": "query",
    "name": "token",
    "description": "A calendar feed token (ics_...) from POST /v1/calendar-feeds",
}


@blp.route("/calendar-feeds")
class Feeds(MethodView):
    @requires("admin")
    @blp.arguments(AuditListArgs, location="query")
    @blp.response(200, FeedPageSchema)
    def get(self, args):
        """List live calendar feed tokens (and the revoked ones too with include_revoked)"""
        return paginate(audited(CalendarFeed, args), CalendarFeed, args)

    @requires("admin")
    @blp.arguments(FeedSchema)
    @blp.response(201, NewFeedSchema)
    @etags.tagged
    def post(self, data):
        """Issue a feed token for a practitioner, room or clinic; the answer has its URL, shown once"""
        feed, token = ical_feed.issue_feed(
            db.session(), organization_id(), data["owner_type"], data["owner_id"], data.get("name")
        )
        feed.secret = feed.token = token  # not columns: they exist only in this response
        feed.url = url_for(
            _ENDPOINT[feed.owner_type], **{f"{feed.owner_type}_id": feed.owner_id}, token=token, _external=True
        )
        idempotency.withhold("secret", "token", "url")
        return feed


@blp.route("/calendar-feeds/<feed_id>")
class FeedItem(MethodView):
    @requires("admin")
    @blp.response(200, FeedSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.tagged
    def get(self, feed_id):
        """Get a calendar feed token (never the token itself)"""
        return get_or_404(CalendarFeed, feed_id, what="calendar feed")

    @requires("admin")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(description=GONE_BUT_AUDITED)
    @etags.conditional
    def delete(self, feed_id):
        """Revoke a feed token: its URL is a 404 from now on"""
        ical_feed.revoke_feed(db.session(), organization_id(), feed_id, etags.expected_version(feed_id))


def _serve(owner_type: str, owner_id: str, token: str) -> Response:
    session = db.session()
    feed = ical_feed.find_feed(session, owner_type, owner_id, token)
    body = ical_feed.render(session, feed, clock.now())
    response = current_app.response_class(body, mimetype="text/calendar")
    response.headers["Cache-Control"] = "private, max-age=300"
    response.headers["Content-Disposition"] = f'inline; filename="{owner_type}-{owner_id}.ics"'
    return response


def _feed_route(owner_type: str, summary: str) -> None:
    """GET /v1/<owner>s/<id>/calendar.ics, read with its feed token (one route per kind of owner)."""

    def view(token, **ids):
        return _serve(owner_type, ids[f"{owner_type}_id"], token)

    view.__name__, view.__doc__ = f"{owner_type}_feed", summary
    documented = blp.doc(**ICS_DOC)(blp.alt_response(404, response="NOT_FOUND")(view))
    blp.route(f"/{owner_type}s/<{owner_type}_id>/calendar.ics", endpoint=f"{owner_type}_feed")(
        blp.arguments(TokenArgs, location="query", as_kwargs=True)(documented)
    )


_feed_route("practitioner", "A practitioner's appointments and holds at every clinic, as iCalendar")
_feed_route("room", "A room's appointments and holds, as iCalendar")
_feed_route("clinic", "A clinic's appointments and holds, as iCalendar")


class ExternalCalendarSchema(Schema):
    id = ma.fields.String(dump_only=True)
    practitioner_id = ma.fields.String(dump_only=True)
    name = Name(required=True)
    url = ma.fields.Url(
        attribute="source_url",
        schemes={"http", "https"},
        require_tld=False,
        allow_none=True,
        validate=ma.validate.Length(max=2000),
        metadata={"description": "An iCalendar feed to fetch now and every 15 minutes (or give ics)"},
    )
    ics = ma.fields.String(
        load_only=True,
        validate=ma.validate.Length(max=2 * 1024 * 1024),
        metadata={"description": "An uploaded iCalendar document (instead of url)"},
    )
    status = ma.fields.Method(
        "_status",
        dump_only=True,
        metadata={
            "type": "string",
            "enum": ["ok", "error"],
            "description": "ok, or error when the last fetch failed (the last good copy still blocks time)",
        },
    )
    fetched_at = ma.fields.AwareDateTime(dump_only=True, allow_none=True)
    last_error = ma.fields.String(dump_only=True, allow_none=True)
    last_error_at = ma.fields.AwareDateTime(dump_only=True, allow_none=True)
    created_at = ma.fields.AwareDateTime(dump_only=True)
    updated_at = ma.fields.AwareDateTime(dump_only=True)

    def _status(self, row):
        return "error" if row.last_error else "ok"


class ExternalCalendarUpdateSchema(Schema):
    name = Name()
    ics = ma.fields.String(
        validate=ma.validate.Length(max=2 * 1024 * 1024),
        metadata={"description": "A new version of an uploaded calendar"},
    )


ExternalCalendarPageSchema = page_schema(ExternalCalendarSchema)


def _external(calendar_id: str) -> ExternalCalendar:
    return get_or_404(ExternalCalendar, calendar_id, what="external calendar")


@blp.route("/practitioners/<practitioner_id>/external-calendars")
class ExternalCalendars(MethodView):
    @requires("read")
    @blp.arguments(ListArgs, location="query")
    @blp.response(200, ExternalCalendarPageSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, args, practitioner_id):
        """List a practitioner's external calendars and whether they are fetched fine"""
        practitioner = get_or_404(Practitioner, practitioner_id)
        return paginate(
            scoped(ExternalCalendar).where(ExternalCalendar.practitioner_id == practitioner.id), ExternalCalendar, args
        )

    @requires("admin")
    @blp.arguments(ExternalCalendarSchema)
    @blp.response(201, ExternalCalendarSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.tagged
    def post(self, data, practitioner_id):
        """Add an external calendar (a feed URL or an uploaded file) whose events block the practitioner"""
        zone = practitioner_zone(get_or_404(Practitioner, practitioner_id).clinic_zones)
        db.end_transaction()  # the fetch and the expansion wait on untrusted content, never with the lock held
        source = external_calendars.prepare(
            url=data.get("source_url"),
            ics=data.get("ics"),
            zone=zone,
            now=clock.now(),
            allow_private=current_app.config["WEBHOOKS_ALLOW_PRIVATE"],
        )
        practitioner = get_or_404(Practitioner, practitioner_id)  # again: it may have gone meanwhile
        return external_calendars.add(db.session(), organization_id(), practitioner, data["name"], source, clock.now())


@blp.route("/external-calendars/<calendar_id>")
class ExternalCalendarItem(MethodView):
    @requires("read")
    @blp.response(200, ExternalCalendarSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.tagged
    def get(self, calendar_id):
        """Get an external calendar: when it was fetched, and the last error"""
        return _external(calendar_id)

    @requires("admin")
    @blp.arguments(ExternalCalendarUpdateSchema)
    @blp.response(200, ExternalCalendarSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.conditional
    @etags.tagged
    def patch(self, data, calendar_id):
        """Rename an external calendar, or upload a new version of a file"""
        upload = None
        if "ics" in data:  # expanded first, with no transaction open; If-Match is checked under the lock after
            row = _external(calendar_id)
            zone = practitioner_zone(get_or_404(Practitioner, row.practitioner_id).clinic_zones)
            db.end_transaction()
            upload = data["ics"], external_calendars.new_version(row, data["ics"], zone, clock.now())
        return external_calendars.change(
            db.session(),
            organization_id(),
            calendar_id,
            etags.expected_version(calendar_id),
            name=data.get("name"),
            upload=upload,
        )

    @requires("admin")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(description=GONE)
    @etags.conditional
    def delete(self, calendar_id):
        """Remove an external calendar: its events stop blocking time"""
        external_calendars.remove_by_id(
            db.session(), organization_id(), calendar_id, etags.expected_version(calendar_id)
        )
