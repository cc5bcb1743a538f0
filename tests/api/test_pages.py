"""The booking, manage and day-sheet pages over HTTP: the key each embeds, the Content-Security-Policy,
no inline script, the language hook; what the browser tier (tests/browser) then drives."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from api import pages

from .test_publishable_keys import publishable


class Markup(HTMLParser):
    """The tags and attributes of a page."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.data: dict[str, str] = {}
        self._open: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._open = tag

    def handle_data(self, data):
        if self._open == "script" and data.strip():
            self.data["script"] = data

    def handle_endtag(self, tag):
        self._open = None

    def meta(self, name: str) -> str | None:
        return next((a.get("content") for t, a in self.tags if t == "meta" and a.get("name") == name), None)


@pytest.fixture
def site(app, admin, tmp_path, monkeypatch):
    pk = publishable(admin, origins=("http://localhost",))
    pages_file = tmp_path / "booking-pages.json"
    pages_file.write_text(json.dumps({"north-clinic": pk.token, "Bad Slug": pk.token, "secret": "nbk_not_public"}))
    monkeypatch.setitem(app.config, "BOOKING_PAGES_FILE", str(pages_file))
    return pk


def assert_locked_down(response) -> Markup:
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    markup = Markup(response.get_data(as_text=True))
    assert "script" not in markup.data, "no inline script"
    for tag, attributes in markup.tags:
        assert not any(a.startswith("on") for a in attributes), (tag, attributes)
        assert "style" not in attributes, (tag, attributes)
        if tag == "script":
            assert attributes["src"].startswith("/pages/"), attributes
    return markup


@pytest.mark.parametrize("path", ["/book/north-clinic", "/book/north-clinic/manage"])
def test_a_booking_page_embeds_its_publishable_key(client, site, path):
    response = client.get(path)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "no-store"
    markup = assert_locked_down(response)
    assert markup.meta("needlebook-key") == site.token
    assert markup.meta("needlebook-slug") == "north-clinic"
    html = next(a for t, a in markup.tags if t == "html")
    assert (html["lang"], html["dir"]) == ("en", "ltr")
    labelled = {a["for"] for t, a in markup.tags if t == "label"}
    fields = {a["id"] for t, a in markup.tags if t in ("input", "select")}
    assert fields <= labelled, "every field has a label"
    assert any(a.get("role") == "alert" for _, a in markup.tags), "an alert region for errors"


@pytest.mark.parametrize("slug", ["nowhere", "Bad Slug", "secret", "north-clinic.json"])
def test_an_unknown_slug_or_a_secret_key_is_no_page(client, site, slug):
    response = client.get(f"/book/{slug}")
    assert response.status_code == 404 and response.mimetype == "text/html"
    markup = assert_locked_down(response)
    assert markup.meta("needlebook-key") is None
    assert "nbk_" not in response.get_data(as_text=True)


def test_without_a_pages_file_there_is_no_booking_page(app, client, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "BOOKING_PAGES_FILE", str(tmp_path / "absent.json"))
    assert client.get("/book/demo").status_code == 404
    (tmp_path / "absent.json").write_text("not json")
    assert client.get("/book/demo").status_code == 404


def test_the_day_sheet_page_embeds_no_key(client, site):
    response = client.get("/day-sheet")
    assert response.status_code == 200
    markup = assert_locked_down(response)
    assert markup.meta("needlebook-key") is None
    key = next(a for t, a in markup.tags if a.get("id") == "api-key")
    assert key["type"] == "password"


def test_the_scripts_and_style_are_served_but_not_the_templates(client):
    for name, mimetype in (("book.js", "text/javascript"), ("common.js", "text/javascript"), ("pages.css", "text/css")):
        response = client.get(f"/pages/{name}")
        assert (response.status_code, response.mimetype) == (200, mimetype), name
        assert "Content-Security-Policy" in response.headers
    for name in ("book.html", "..%2Fpages.py", "nothing.js"):
        assert client.get(f"/pages/{name}").status_code == 404, name


def test_the_pages_follow_the_language_hook(client, site):
    """lang and dir come from page_language(): an Arabic visitor gets a right-to-left page."""
    markup = pages_markup(client.get("/book/north-clinic", headers={"Accept-Language": "ar-JO,ar;q=0.9,en;q=0.5"}))
    html = next(a for t, a in markup.tags if t == "html")
    assert (html["lang"], html["dir"]) == ("ar", "rtl")
    markup = pages_markup(client.get("/book/north-clinic", headers={"Accept-Language": "fr, en;q=0.5"}))
    assert next(a for t, a in markup.tags if t == "html")["dir"] == "ltr"


def pages_markup(response) -> Markup:
    assert response.status_code == 200
    return Markup(response.get_data(as_text=True))


def test_every_refusal_code_has_a_message_for_the_patient():
    """common.js words each refusal code a booking page can meet (the API's problem codes)."""
    from api.errors import HTTP_CODES
    from booking.services.patients import PATIENT_REFUSALS

    script = (pages.STATIC / "common.js").read_text()
    worded = set(re.findall(r"^\s+([a-z_]+): _\(\"", script, re.MULTILINE))
    codes = {r.code for r in PATIENT_REFUSALS} | {
        "slot_unavailable", "hold_expired", "manage_link_ended", "cancellation_window_passed", "origin_not_allowed",
        "too_soon", "too_far_ahead", "same_day_not_allowed", "off_grid", "not_bookable_online",
    }  # fmt: skip
    codes |= {HTTP_CODES[s] for s in (401, 403, 404, 422, 429)}
    assert codes <= worded, codes - worded
