"""Who commits: the request, once its answer is known, never the view.

A view's service does its work in the request's unit of work and flushes (so the database's
constraints and version guards speak inside the view, where their errors become answers); it
never commits. After the view, a `< 400` answer commits the unit of work here, with what the
Idempotency-Key records about it registered as its before-commit hook (one transaction: a
retry after any crash either finds the answer or finds nothing done), and anything else is
rolled back. The teardown in `api.db` rolls back whatever is left.
"""

from __future__ import annotations

import logging
from functools import partial

from flask import g, request
from sqlalchemy.exc import SQLAlchemyError

from . import db, errors, idempotency

log = logging.getLogger("needlebook.api")


def init_app(app) -> None:
    app.before_request(idempotency.claim)
    app.after_request(_finish)


def _finish(response):
    claim = g.pop("idempotency_claim", None)
    session = g.get("db_session")
    if session is None:
        return response
    if claim is None and request.method in db.READ_METHODS:
        return response
    work = db.unit_of_work()
    try:
        if response.status_code >= 400:
            work.rollback()  # whatever the view left is not part of a refusal
        work.before_commit(partial(idempotency.record, claim=claim, response=response))
        work.commit()
    except idempotency.Superseded:
        work.rollback()
        return idempotency.in_flight_answer()
    except SQLAlchemyError:
        work.rollback()
        log.exception("could not commit %s %s [request_id=%s]", request.method, request.path, errors.request_id())
        idempotency.release(session, claim)
        return errors.problem(500, "internal_error", "The change could not be saved; nothing was changed.")
    idempotency.clean_up_now_and_then(session)
    return response
