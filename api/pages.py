"""The reference booking page, its manage page and the front desk's day-sheet page.

Plain HTML and JavaScript (api/static/pages/), built only on the public API. They are not API
routes: they are left out of the OpenAPI document, and each answer carries a Content-Security-Policy
that allows scripts, styles and requests from this origin only (no inline script).

A booking page is `/book/<slug>`: the slug names a publishable key in the booking-pages file
(`BOOKING_PAGES_FILE`, JSON `{"<slug>": "pk_..."}`, written by `flask seed-demo` for the demo as
`demo`). Organizations have no slug of their own (there is no such column): the slug is the
operator's public name for the page, and the key it names says which organization it books. The
key is publishable (it is shipped in every page anyway), so the file may hold it in the clear; the
server embeds it in the page in a `<meta>` element. The page's origin must be among the key's
`origins`. The manage page is `/book/<slug>/manage#<manage token>`: the token stays in the URL's
fragment, which a browser never sends, so it reaches neither the access log nor a Referer.

The day sheet (`/day-sheet`) embeds no key: the front desk types a staff key, kept in the tab's
sessionStorage only.

Language. A page is in the visitor's language: `?lang=` (the page's language switch, a link per
language) else the best of `Accept-Language` among the catalogs (booking/i18n), else English; `lang`
and `dir` on `<html>` follow it. The words are the same gettext catalogs as the API's: the HTML
templates are Jinja templates whose text is `_()` (pybabel extracts them with the jinja2 method,
babel.cfg), rendered here with that language's catalog. The scripts' words are `_()` calls too
(pybabel's javascript method), but the Content-Security-Policy allows no inline script, so they
cannot be written into the page: each page loads `/pages/i18n/<lang>.js`, a script that sets
`NEEDLEBOOK_MESSAGES` to {English message id: translation} for every message the scripts use (found
by the same extraction, run over the scripts once per process), before the page's own scripts run.
The scripts then send the page's language in `Accept-Language` on every API call, so the API's
refusals and pre-care come back in it too.
"""

from __future__ import annotations

import json
import re
from functools import cache, lru_cache
from pathlib import Path

import jinja2
from babel.messages.extract import extract
from flask import Blueprint, Response, abort, current_app, request, send_from_directory

from booking import i18n

STATIC = Path(__file__).resolve().parent / "static" / "pages"
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")

# Languages the pages are written in (a catalog each), and those of them written right to left.
PAGE_LANGUAGES: tuple[str, ...] = i18n.SUPPORTED
RIGHT_TO_LEFT = frozenset({"ar", "he", "fa", "ur"})
# The language switch: each language named in itself.
LANGUAGE_NAMES = {"en": "English", "ar": "العربية"}
SCRIPTS = ("common.js", "slots.js", "book.js", "manage.js", "day-sheet.js")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)

blp = Blueprint("pages", __name__)


def pages_file() -> Path:
    """BOOKING_PAGES_FILE, by default `booking-pages.json` in the instance folder (one per database)."""
    from .cli import instance_file

    configured = current_app.config.get("BOOKING_PAGES_FILE")
    if configured:
        return Path(configured)
    return instance_file(Path(current_app.instance_path), current_app.config["DATABASE_URL"], "booking-pages.json")


def page_language() -> tuple[str, str]:
    """(lang, dir) of a page: its `?lang=` (the language switch), else the visitor's best
    Accept-Language among PAGE_LANGUAGES, else the first of them."""
    chosen = request.args.get("lang")
    if chosen not in PAGE_LANGUAGES:
        chosen = request.accept_languages.best_match(PAGE_LANGUAGES, default=PAGE_LANGUAGES[0])
    lang = chosen or PAGE_LANGUAGES[0]
    return lang, "rtl" if lang.split("-")[0] in RIGHT_TO_LEFT else "ltr"


def booking_pages() -> dict[str, str]:
    """slug -> publishable key, from BOOKING_PAGES_FILE (read again when the file changes)."""
    path = pages_file()
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return {}
    return _read_pages(str(path), stamp)


@lru_cache(maxsize=8)
def _read_pages(path: str, _stamp: int) -> dict[str, str]:
    try:
        pages = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        current_app.logger.warning("booking pages file %s is not readable JSON", path)
        return {}
    if not isinstance(pages, dict):
        return {}
    return {str(k): v for k, v in pages.items() if SLUG.match(str(k)) and isinstance(v, str) and v.startswith("pk_")}


@cache
def _templates(lang: str) -> jinja2.Environment:
    """The pages' templates with `_()` translating into `lang` (Jinja's i18n extension, newstyle:
    `_("... %(name)s", name=...)` fills and escapes like the API's own messages)."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(STATIC), autoescape=True, undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
    )  # fmt: skip
    environment.install_gettext_translations(i18n.catalog(lang), newstyle=True)  # type: ignore[attr-defined]
    return environment


def _switch(lang: str) -> list[dict[str, str]]:
    """The language switch: a link to this page in each other language (`?lang=`; the manage page's
    script adds its fragment, the manage token, to the link)."""
    return [
        {"lang": other, "href": f"?lang={other}", "name": LANGUAGE_NAMES.get(other, other)}
        for other in PAGE_LANGUAGES
        if other != lang
    ]


def _page(name: str, status: int = 200, **values: str) -> Response:
    lang, direction = page_language()
    html = _templates(lang).get_template(name).render(lang=lang, dir=direction, languages=_switch(lang), **values)
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Content-Language"] = lang
    response.vary.add("Accept-Language")
    return response


@cache
def script_messages() -> tuple[str, ...]:
    """Every message id the pages' scripts use, as `make translations-update` extracts them."""
    found: set[str] = set()
    for name in SCRIPTS:
        with (STATIC / name).open("rb") as f:
            options = {"parse_template_string": "true"}
            messages = extract("javascript", f, keywords={"_": None}, options=options)
            found.update(m for _, m, _, _ in messages if isinstance(m, str))  # `_()` takes no plural
    return tuple(sorted(found))


@blp.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"
    return response


def invite_url(organization_id: str, token: str, host_url: str) -> str | None:
    """The organization's booking page opened with a patient's booking link token (in the
    fragment, so it reaches neither the access log nor a Referer); None when no page books for it."""
    from booking.services.tenancy import find_key

    from . import db

    for slug, key in sorted(booking_pages().items()):
        facts = find_key(db.session(), key)
        if facts is not None and facts.organization_id == organization_id:
            return f"{host_url.rstrip('/')}/book/{slug}#invite={token}"
    return None


def _booking_key(slug: str) -> str | None:
    return booking_pages().get(slug) if SLUG.match(slug) else None


@blp.get("/book/<slug>")
def book(slug: str):
    key = _booking_key(slug)
    if key is None:
        return _page("not-found.html", 404)
    return _page("book.html", key=key, slug=slug)


@blp.get("/book/<slug>/manage")
def manage(slug: str):
    key = _booking_key(slug)
    if key is None:
        return _page("not-found.html", 404)
    return _page("manage.html", key=key, slug=slug)


@blp.get("/day-sheet")
def day_sheet():
    return _page("day-sheet.html")


@blp.get("/pages/i18n/<lang>.js")
def script_catalog(lang: str):
    """The scripts' words in one language (see the module's docstring: no inline script)."""
    if lang not in PAGE_LANGUAGES:
        abort(404)
    text = i18n.Text(lang)
    words = {message: text.gettext(message) for message in script_messages()}
    body = f"// The page scripts' words in {lang} (booking/i18n catalogs).\n" + (
        f"window.NEEDLEBOOK_MESSAGES = {json.dumps(words, ensure_ascii=False, sort_keys=True)};\n"
    )
    response = Response(body, mimetype="text/javascript")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@blp.get("/pages/<name>")
def asset(name: str):
    """The pages' scripts and style sheet (not the HTML templates)."""
    if not name.endswith((".js", ".css")):
        abort(404)
    return send_from_directory(STATIC, name, max_age=300)


def init_app(app) -> None:
    app.register_blueprint(blp)
