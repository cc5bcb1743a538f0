"""The language of a patient's answers: on the booking page's routes (/v1/booking/...), the
manage links (/v1/manage/...) and the availability search when a booking page's publishable key
makes it (its `reason.detail`), the patient's own `language` where the route knows the patient (a
manage link's; a booking's registering patient), else the request's `Accept-Language`, else
English (Flask-Babel's locale selector). Those answers say which in `Content-Language`. Every other
route is the integrator's and stays in English. The words are the catalogs of booking/i18n.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flask_babel
import marshmallow as ma
from flask import g, has_request_context, request

from booking import i18n
from booking.i18n import problems

PATIENT_FACING = ("booking_page", "manage")  # blueprints
# Blueprints a booking page shares with integrators: the patient's when a publishable key calls.
PAGE_SHARED = ("availability",)
CONTENT_LANGUAGE = {
    "description": "The language of the answer's patient-facing text (pre-care instructions, a refusal's "
    "`title` and `detail`; on the availability search, sent to a publishable key only, `reason.detail`): the "
    "patient's `language`, else the best of `Accept-Language` among `en` and "
    "`ar`, else `en`. A refusal with no patient message keeps the integrator's English and says `en`.",
    "schema": {"type": "string", "enum": list(i18n.SUPPORTED)},
}

ACCEPT_LANGUAGE = {
    "description": "The languages the patient reads, best first (`ar, en;q=0.5`): the answer's text is in the "
    "best one with a catalog (`en`, `ar`), else English. On a manage link, and a booking whose patient gives "
    "a `language`, the patient's own language wins.",
    "schema": {"type": "string"},
    "example": "ar",
}


def patient_facing(endpoint: str | None = None) -> bool:
    """Whether this request's answer is the patient's to read; with an `endpoint` (the OpenAPI
    document's question), whether that route's answers may be."""
    if endpoint is not None:
        return endpoint.partition(".")[0] in PATIENT_FACING + PAGE_SHARED
    if not has_request_context():
        return False
    blueprint = (request.endpoint or "").partition(".")[0]
    if blueprint in PAGE_SHARED:
        key = g.get("api_key")  # set once the request's key is known (api.auth.authenticate)
        return key is not None and key.publishable
    return blueprint in PATIENT_FACING


def select_locale() -> str:
    if not patient_facing():
        return i18n.DEFAULT
    return i18n.Text.of(g.get("patient_language"), request.accept_languages.best_match(i18n.SUPPORTED)).language


def prefer(tag: str | None) -> None:
    """The patient's own language wins over the request's from here on (when it has a catalog)."""
    g.patient_language = tag
    flask_babel.refresh()


def text() -> i18n.Text:
    return i18n.Text(str(flask_babel.get_locale() or i18n.DEFAULT))


def problem_text(status: int, code: str, facts: Mapping[str, Any]) -> tuple[str, str] | None:
    """A refusal's (title, detail) for the patient, or None off their routes or without a message."""
    if not patient_facing():
        return None
    t = text()
    words = problems.text(code, status, facts, t)
    g.content_language = t.language if words else i18n.DEFAULT
    return words


def patient_detail(code: str, facts: Mapping[str, Any]) -> str | None:
    """A refusal's words for the patient outside a problem (a booking page's search `reason`), or None."""
    words = problem_text(422, code, facts)
    return words[1] if words else None


def _content_language(response):
    if patient_facing():
        if "Content-Language" not in response.headers:  # a replayed first answer keeps its own
            response.headers["Content-Language"] = g.get("content_language") or text().language
        response.vary.add("Accept-Language")
    return response


def _valid_tag(value: str) -> None:
    try:
        i18n.parse_tag(value)
    except ValueError:
        raise ma.ValidationError("Must be a BCP 47 language tag, such as `ar` or `en-GB`.") from None


Language = ma.fields.String(
    load_default=None,
    allow_none=True,
    validate=[ma.validate.Length(max=35), _valid_tag],
    metadata={
        "description": "The language the patient reads, a BCP 47 tag (`ar`, `en-GB`): pre-care and aftercare "
        "instructions and a booking page's refusals follow it where there is a catalog (`en`, `ar`), else English",
        "example": "ar",
    },
)

Direction = ma.fields.String(
    metadata={
        "enum": ["ltr", "rtl"],
        "description": "The text direction of the patient-facing text, for the page's `dir` (Arabic: `rtl`)",
    }
)


def init_app(app) -> None:
    flask_babel.Babel(
        app,
        locale_selector=select_locale,
        default_locale=i18n.DEFAULT,
        default_domain=i18n.DOMAIN,
        default_translation_directories=str(i18n.TRANSLATIONS),
    )
    app.after_request(_content_language)
