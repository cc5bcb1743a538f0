"""Idempotency-Key on every POST: a retry gets the first answer instead of the work done twice.

A key belongs to the caller's organization, so it is looked at only once the request is
authenticated and allowed (an unauthenticated or forbidden request is answered by the view's
own guard and leaves no trace). It is claimed before the view runs, in a transaction of its
own that is committed at once: a concurrent request with the same key then finds the claim
(on PostgreSQL the primary key makes the second insert wait and fail; on SQLite write
transactions are serialized) and is told to retry later instead of doing the work too.

The answer is recorded in the same transaction as the work (`api.transactions` commits both),
so a request whose work committed always has its answer stored: a claim still in flight has
done nothing, and one left by a worker that died may be taken over after ABANDONED_AFTER. The
claim's `created_at` says whose it is: a request that finds, at commit, that its claim was
taken over rolls its work back. An answer that says nothing final about the request (a 5xx, a
429) is not stored but releases the key, so that a retry runs for real. Every 4xx the view
gives is final and replayed: a validation error stays one for that body.

Secrets (API keys, feed tokens, webhook signing secrets) are never stored: a view that shows
one calls `withhold()`, and the stored answer has those fields null and `secret_withheld: true`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app, g, request
from flask_smorest import abort
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from werkzeug.exceptions import HTTPException

from booking.domain import clock
from models import IdempotencyKey

from . import auth, db, errors

log = logging.getLogger("needlebook.api")

HEADER = "Idempotency-Key"
VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII, as Stripe and the IETF draft allow
TTL = timedelta(hours=24)
REPLAYED_HEADERS = ("Content-Type", "Location", "ETag", "Content-Language")  # the body's language with it
# Answers about the moment rather than the request; the key is released so a retry runs.
NOT_STORED = frozenset({401, 403, 408, 425, 429})
IN_FLIGHT_RETRY_AFTER = "1"
# A claim still in flight after this was left by a worker that died (gunicorn kills a request
# after 30 s) and did nothing (work and answer commit together); a retry may take it over rather
# than be refused for the rest of the day.
ABANDONED_AFTER = timedelta(minutes=2)
# Expired rows are ignored and taken over when their key comes back; the rest are deleted by
# about one POST in a hundred, so the table stays small without a job of its own.
CLEANUP_RATE = 0.01

PARAMETER = {
    "description": (
        "Makes the POST safe to retry: a retry with the same key and the same request answers "
        "with the first response (status, body, Location, ETag, and `Idempotent-Replayed: true`) "
        "and changes nothing. Keys are per organization and kept for 24 hours. The same key with "
        "another request is a 422 `idempotency_key_reused`; a retry while the first request is "
        "still running is a 409 `idempotency_key_in_flight` with `Retry-After`."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
    "example": "5f0c7d8e-booking-42",
}


class Superseded(Exception):
    """The request's claim was taken over (it ran past ABANDONED_AFTER): its work must not commit."""


def claim():
    """Before an authenticated POST with a key: claim the key, or answer from it."""
    if request.method != "POST" or HEADER not in request.headers:
        return None
    scope = _required_scope()
    if scope is None:
        return None
    try:
        # The same lookup the view's guard makes (it is cached on `g`); its 401 is left to the view.
        api_key = auth.authenticate()
    except HTTPException:
        return None
    if scope not in api_key.scopes or (api_key.publishable and not _handler_flag("publishable")):
        return None  # the view's guard answers 403
    key = request.headers[HEADER]
    if not VALID_KEY.fullmatch(key):
        abort(422, errors={HEADER: ["Must be 1 to 255 visible ASCII characters (no spaces)."]})
    organization_id, fingerprint = api_key.organization_id, _fingerprint()
    session = db.session()
    held, claimed_at = _take(session, organization_id, key, fingerprint)
    session.commit()
    if held is None:
        g.idempotency_claim = Claim(organization_id, key, claimed_at)
        return None
    return _answer_from(held, fingerprint)


@dataclass(frozen=True)
class Claim:
    organization_id: str
    key: str
    claimed_at: datetime  # whose claim it is: a takeover writes its own

    def row(self):
        return (IdempotencyKey.organization_id == self.organization_id) & (IdempotencyKey.key == self.key)


def withhold(*fields: str) -> None:
    """The answer shows a secret in these fields: store it with them null, never the secret."""
    g.idempotency_withhold = fields


def _answer_from(held: IdempotencyKey, fingerprint: str):
    """Someone holds the key: refuse another request, ask to wait, or replay the answer."""
    if held.fingerprint != fingerprint:
        abort(
            422,
            code="idempotency_key_reused",
            message=f"The Idempotency-Key was used for another request ({held.method} {held.path} or "
            "another body); use a new key for a new request.",
        )
    if held.status == "in_flight":
        abort(
            409,
            code="idempotency_key_in_flight",
            message="A request with this Idempotency-Key is still being processed; retry shortly.",
            headers={"Retry-After": IN_FLIGHT_RETRY_AFTER},
        )
    return _replay(held)


def _required_scope() -> str | None:
    """The scope the view demands (`auth.requires`); None for a route that is not the API's."""
    return _handler_flag("required_scope")


def _handler_flag(name: str):
    view = current_app.view_functions.get(request.endpoint or "")
    handler = getattr(getattr(view, "view_class", None), request.method.lower(), view)
    return getattr(handler, name, None)


def _fingerprint() -> str:
    """SHA-256 over method, path, query, media type and body bytes, each length-prefixed."""
    digest = hashlib.sha256()
    for part in (
        request.method.encode(),
        request.path.encode(),
        request.query_string,
        (request.mimetype or "").encode(),
        request.get_data(cache=True),
    ):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def _take(  # type: ignore[return]  # it ends in flask_smorest's abort(), which raises but is untyped
    session, organization_id: str, key: str, fingerprint: str
) -> tuple[IdempotencyKey | None, datetime]:
    """Claim the key ((None, when)), or return the live row of whoever holds it."""
    now = clock.now()
    claim = dict(
        fingerprint=fingerprint,
        method=request.method,
        path=request.path[:2000],
        status="in_flight",
        response_status=None,
        response_body=None,
        response_headers=None,
        created_at=now,
        expires_at=now + TTL,
    )
    match = (IdempotencyKey.organization_id == organization_id) & (IdempotencyKey.key == key)
    for _ in range(3):  # a holder may release its key between our attempts
        held = session.scalar(sa.select(IdempotencyKey).where(match).execution_options(populate_existing=True))
        if held is None:
            try:
                with session.begin_nested():
                    session.add(IdempotencyKey(organization_id=organization_id, key=key, **claim))
                return None, now
            except IntegrityError:  # a concurrent request claimed it first
                continue
        abandoned = (
            held.status == "in_flight" and held.created_at <= now - ABANDONED_AFTER and held.fingerprint == fingerprint
        )
        if held.expires_at > now and not abandoned:
            return held, now
        # Expired, or abandoned by the same request: take it over, unless a concurrent request just did.
        free = (IdempotencyKey.expires_at <= now) | (
            (IdempotencyKey.status == "in_flight")
            & (IdempotencyKey.created_at <= now - ABANDONED_AFTER)
            & (IdempotencyKey.fingerprint == fingerprint)
        )
        taken = session.execute(
            sa.update(IdempotencyKey).where(match, free).values(**claim).execution_options(synchronize_session=False)
        )
        if taken.rowcount == 1:
            return None, now
    abort(
        409,
        code="idempotency_key_in_flight",
        message="The Idempotency-Key is contended; retry shortly.",
        headers={"Retry-After": IN_FLIGHT_RETRY_AFTER},
    )


def _replay(held: IdempotencyKey):
    response = current_app.response_class(held.response_body, status=held.response_status)
    for name, value in (held.response_headers or {}).items():
        response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response


def record(session, claim: Claim | None, response) -> None:
    """In the transaction that commits the request's work: store its answer, or release the key.

    Raises Superseded when the claim is no longer this request's (it was taken over).
    """
    if claim is None:
        return
    status = response.status_code
    held = session.scalar(
        sa.select(IdempotencyKey).where(claim.row()).with_for_update().execution_options(populate_existing=True)
    )
    if held is None or held.status != "in_flight" or held.created_at != claim.claimed_at:
        raise Superseded
    if status >= 500 or status in NOT_STORED or response.is_streamed:
        session.delete(held)
        return
    held.status, held.response_status = "done", status
    held.response_body = _stored_body(response)
    held.response_headers = {h: response.headers[h] for h in REPLAYED_HEADERS if h in response.headers}


def _stored_body(response) -> str:
    body = response.get_data(as_text=True)
    fields = g.pop("idempotency_withhold", ())
    if not fields or response.status_code >= 300:
        return body
    answer = json.loads(body)
    answer.update(dict.fromkeys(fields), secret_withheld=True)
    return json.dumps(answer, separators=(",", ":"))


def release(session, claim: Claim | None) -> None:
    """After a failed commit: free the key (if still ours) so that a retry runs."""
    if claim is None:
        return
    try:
        session.execute(
            sa.delete(IdempotencyKey).where(
                claim.row(), IdempotencyKey.status == "in_flight", IdempotencyKey.created_at == claim.claimed_at
            )
        )
        session.commit()
    except SQLAlchemyError:
        # The claim stays in flight; it is taken over after ABANDONED_AFTER (nothing was committed).
        session.rollback()
        log.exception("could not release Idempotency-Key %r of organization %s", claim.key, claim.organization_id)


def in_flight_answer():
    return errors.problem(
        409,
        "idempotency_key_in_flight",
        "A request with this Idempotency-Key is being processed by another attempt; retry shortly.",
        headers={"Retry-After": IN_FLIGHT_RETRY_AFTER},
    )


def clean_up_now_and_then(session) -> None:
    if random.random() < CLEANUP_RATE:
        try:
            delete_expired(session)
        except SQLAlchemyError:
            session.rollback()
            log.exception("could not delete expired Idempotency-Keys")


def delete_expired(session) -> int:
    deleted = session.execute(sa.delete(IdempotencyKey).where(IdempotencyKey.expires_at <= clock.now())).rowcount
    session.commit()
    return deleted
