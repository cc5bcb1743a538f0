"""gunicorn's access log without secrets: feed tokens (`?token=...`, what calendar apps must put
in the URL) and credentials in headers are masked before any format sees them.

A `logger_class` for gunicorn (`gunicorn.conf.py` names it, so `gunicorn wsgi:app` and `make run`
both use it): gunicorn builds each access-log line from the `atoms` this class returns.
"""

from __future__ import annotations

import re
from typing import Any, cast

from gunicorn.glogging import Logger

MASK = "[redacted]"
# Query parameters that carry a secret; matched as whole names, in the request line and the referer.
SECRET_PARAMETERS = re.compile(r"(?i)(?<=[?&;])(token|key|secret|api_key|access_token|patient_token)=[^&;#\s]*")
# Path segments that are a secret: a patient's manage link token (/v1/manage/mt_...), a patient's
# booking link token (/v1/booking/links/bl_...).
SECRET_SEGMENTS = re.compile(r"(?<=/)(?:mt|bl)_[A-Za-z0-9_-]+")
SECRET_HEADERS = frozenset({"{authorization}i", "{cookie}i", "{proxy-authorization}i", "{x-api-key}i"})


def redact(text: str) -> str:
    """`/feed.ics?token=ics_abc&x=1` -> `/feed.ics?token=[redacted]&x=1`;
    `/v1/manage/mt_x` -> `/v1/manage/[redacted]`."""
    if not text:
        return text
    text = SECRET_SEGMENTS.sub(MASK, text)
    return SECRET_PARAMETERS.sub(lambda m: f"{m.group(1)}={MASK}", text)


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        # A plain dict: besides the atoms gunicorn's stubs type, it holds one key per header ("{name}i").
        atoms = cast(dict[str, Any], super().atoms(resp, req, environ, request_time))
        for name in ("r", "f"):
            atoms[name] = redact(atoms[name])
        atoms["q"] = redact("?" + atoms["q"])[1:] if atoms.get("q") else atoms.get("q")
        for name in SECRET_HEADERS & atoms.keys():
            atoms[name] = MASK
        return atoms
