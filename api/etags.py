"""ETag and If-Match: an object's `version` is its tag, so a change can be made conditional on it.

Not flask-smorest's `Blueprint.etag`: it demands If-Match (428) on every PUT, PATCH and DELETE,
where the contract only asks us to honour it, it hashes the serialized body rather than using the
version the database guards, and it checks nothing on POST, where our lifecycle changes are.

The tag is strong (`"<id>.<version>"`) because If-Match compares strongly (RFC 9110 13.1.1): a
weak tag could never match. The id is in it so that the tag of a reschedule's new appointment
can never be mistaken for one of the appointment it replaced.
"""

from __future__ import annotations

import functools

from flask import Response, request
from flask_smorest import abort


def tag(obj) -> str:
    """The entity tag of an ORM object, or of a dict carrying `id` and `version`."""
    if isinstance(obj, dict):
        return f"{obj['id']}.{obj['version']}"
    return f"{obj.id}.{obj.version}"


def tagged(view):
    """The response carries the ETag of the object the view returns.

    Goes below `@blp.response`, so it sees the object rather than the serialized response.
    Marks the view (`view.etag`) so the OpenAPI plugin documents the header.
    """

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        result = view(*args, **kwargs)
        if isinstance(result, (Response, tuple)):
            raise TypeError(f"@tagged must go below @blp.response ({view.__qualname__})")
        # (result, headers): flask-smorest adds the headers to the response it builds.
        return result, {"ETag": f'"{tag(result)}"'}

    wrapper.__dict__["etag"] = True
    return wrapper


def conditional(view):
    """The view honours If-Match: it passes `expected_version(<the object's id>)` to its service.
    Marks the view so the OpenAPI plugin documents If-Match and 412."""
    view.if_match = True
    return view


# Versions start at 1: an If-Match that names none of the object's tags can never match.
NO_VERSION = 0


def expected_version(object_id: str) -> int | None:
    """The version If-Match makes a change of `object_id` conditional on; None without If-Match or with `*`.

    The service locks the object and compares (booking/services/changes.py), so two writers
    sending the same tag are serialized and the second sees the version the first wrote. Weak
    tags never match (If-Match compares strongly); of several tags naming the object, the newest.

    A header that is there but names no entity tag (`If-Match: ,`, an unterminated quote) is a
    412 here: werkzeug parses it as an empty set, which must not read as "no condition".
    """
    if "If-Match" not in request.headers:
        return None
    if not request.if_match:  # falsy when empty; `*` is truthy
        abort(
            412,
            message="If-Match names no entity tag: send `*` or ETags as the API gives them "
            '(quoted, e.g. "appt_....3").',
            code="precondition_failed",
        )
    if request.if_match.star_tag:
        return None
    versions = [
        int(version)
        # werkzeug reads an empty tag ("") as None: it names no version, like any other stranger.
        for named, _, version in (t.rpartition(".") for t in request.if_match.as_set() if t)
        if named == object_id and version.isascii() and version.isdigit() and str(int(version)) == version
    ]
    return max(versions, default=NO_VERSION)
