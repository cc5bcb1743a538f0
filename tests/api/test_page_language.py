"""The reference pages in the patient's language: `?lang=` (the page's switch) else Accept-Language,
`<html lang dir>` to match, every word of the templates from the catalogs, the scripts' words served
as /pages/i18n/<lang>.js; and the availability search a booking page makes answers its `reason` in
the page's language too."""

from __future__ import annotations

import json
import re

import pytest

from api import pages
from booking import i18n

from .test_pages import Markup, assert_locked_down, site  # noqa: F401  (the fixture)
from .test_publishable_keys import publishable

ARABIC = re.compile(r"[\u0600-\u06FF]")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
PAGES = ["/book/north-clinic", "/book/north-clinic/manage", "/book/nowhere", "/day-sheet"]


class Text(Markup):
    """A page's text nodes and the attributes a person reads (outside <head>'s meta, script and style)."""

    READ = ("aria-label", "title", "placeholder", "alt")

    def __init__(self, text: str):
        self.words: list[str] = []
        self._skip = 0
        super().__init__(text)

    def handle_starttag(self, tag, attrs):
        super().handle_starttag(tag, attrs)
        if tag in ("script", "style"):
            self._skip += 1
        self.words += [v for k, v in attrs if k in self.READ and v]

    def handle_endtag(self, tag):
        super().handle_endtag(tag)
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        super().handle_data(data)
        if not self._skip and data.strip():
            self.words.append(data.strip())


def html_attributes(response) -> dict:
    return next(a for t, a in Markup(response.get_data(as_text=True)).tags if t == "html")


@pytest.mark.parametrize("path", PAGES)
def test_an_arabic_visitor_reads_every_word_of_the_page_in_arabic_right_to_left(client, site, path):  # noqa: F811
    response = client.get(path, headers={"Accept-Language": "ar-JO,ar;q=0.9,en;q=0.5"})
    assert_locked_down(response)
    assert (response.headers["Content-Language"], "Accept-Language" in response.headers["Vary"]) == ("ar", True)
    assert html_attributes(response).items() >= {"lang": "ar", "dir": "rtl"}.items()
    words = Text(response.get_data(as_text=True)).words
    assert words and any(ARABIC.search(w) for w in words)
    # Every word is the catalog's but the switch's "English" and the staff key's prefix (nbk_).
    english = [w for w in words if LATIN_WORD.search(w.replace("nbk_", "")) and w != "English"]
    assert english == [], english


@pytest.mark.parametrize("path", PAGES)
def test_an_english_visitor_reads_the_page_in_english(client, site, path):  # noqa: F811
    response = client.get(path, headers={"Accept-Language": "fr-FR, en;q=0.5"})
    assert (html_attributes(response)["lang"], html_attributes(response)["dir"]) == ("en", "ltr")
    words = Text(response.get_data(as_text=True)).words
    assert [w for w in words if ARABIC.search(w)] == ["العربية"]  # only the switch's own name


def test_the_language_switch_wins_over_accept_language_and_names_each_language_in_itself(client, site):  # noqa: F811
    chosen = client.get("/book/north-clinic?lang=ar", headers={"Accept-Language": "en"})
    assert (html_attributes(chosen)["lang"], chosen.headers["Content-Language"]) == ("ar", "ar")
    markup = Markup(chosen.get_data(as_text=True))
    switch = [a for t, a in markup.tags if t == "a" and "data-language" in a]
    assert switch == [{"href": "?lang=en", "lang": "en", "hreflang": "en", "data-language": "en"}]
    assert "<title>احجز موعدًا</title>" in chosen.get_data(as_text=True)
    back = client.get("/book/north-clinic?lang=en", headers={"Accept-Language": "ar"})
    assert html_attributes(back).items() >= {"lang": "en", "dir": "ltr"}.items()
    unknown = client.get("/book/north-clinic?lang=xx", headers={"Accept-Language": "ar"})
    assert html_attributes(unknown)["lang"] == "ar"  # no such catalog: the header decides


def test_the_page_loads_its_languages_words_before_its_scripts(client, site):  # noqa: F811
    markup = Markup(client.get("/book/north-clinic", headers={"Accept-Language": "ar"}).get_data(as_text=True))
    scripts = [a["src"] for t, a in markup.tags if t == "script"]
    assert scripts[0] == "/pages/i18n/ar.js" and "/pages/common.js" in scripts[1:]


def _script_catalog(client, lang: str) -> dict:
    response = client.get(f"/pages/i18n/{lang}.js")
    assert (response.status_code, response.mimetype) == (200, "text/javascript")
    assert response.headers["Content-Security-Policy"] == pages.CSP
    body = response.get_data(as_text=True)
    assignment = re.search(r"^window\.NEEDLEBOOK_MESSAGES = (\{.*\});$", body, re.MULTILINE)
    assert assignment, body[:200]
    return json.loads(assignment.group(1))


def test_the_scripts_words_are_the_catalogs_in_each_language(client):
    used = set(pages.script_messages())
    assert len(used) > 60 and "Week of %(day)s" in used and "Booking…" in used
    english, arabic = _script_catalog(client, "en"), _script_catalog(client, "ar")
    assert set(english) == set(arabic) == used
    assert all(english[m] == m for m in used)
    for message, words in arabic.items():
        placeholders = re.compile(r"%\(\w+\)s")
        worded = LATIN_WORD.search(placeholders.sub("", message))  # not only placeholders and punctuation
        assert words and (ARABIC.search(words) or not worded), (message, words)
        assert sorted(placeholders.findall(words)) == sorted(placeholders.findall(message)), message
    assert arabic["Week of %(day)s"] == i18n.Text("ar").gettext("Week of %(day)s")
    assert client.get("/pages/i18n/fr.js").status_code == 404
    assert client.get("/pages/i18n/..%2Fbook.js").status_code == 404


def test_a_booking_pages_search_says_why_there_is_no_slot_in_the_pages_language(admin, world):
    """A first visit may not book a session: the search's `reason` is the patient's, in Arabic for an
    Arabic page (the code and the facts unchanged); a staff key's search stays the integrator's English."""
    pk = publishable(admin)
    window = {
        "clinic_id": world.clinic["id"],
        "treatment_type_id": world.microneedling["id"],
        "start": world.at(1, 0),
        "end": world.at(2, 0),
    }
    arabic = pk.get("/v1/availability", query_string=window, headers={"Accept-Language": "ar-EG,ar;q=0.9"})
    assert arabic.status_code == 200, arabic.get_json()
    reason = arabic.get_json()["reason"]
    assert reason["code"] == "consultation_required" and ARABIC.search(reason["detail"]), reason
    assert arabic.headers["Content-Language"] == "ar" and "Accept-Language" in arabic.headers["Vary"]

    english = pk.get("/v1/availability", query_string=window, headers={"Accept-Language": "fr, en;q=0.5"})
    assert english.headers["Content-Language"] == "en"
    assert english.get_json()["reason"]["detail"].startswith("A consultation and skin assessment come first")

    for_patient = {**window, "patient_id": world.patient["id"]}  # a patient with no consultation yet
    staff = admin.get("/v1/availability", query_string=for_patient, headers={"Accept-Language": "ar"})
    assert staff.status_code == 200 and staff.get_json()["reason"]["code"] == "consultation_required"
    assert not ARABIC.search(staff.get_json()["reason"]["detail"])
    assert "Content-Language" not in staff.headers


def test_a_booking_pages_refused_search_is_in_the_pages_language(admin, world):
    pk = publishable(admin)
    window = {"treatment_type_id": world.consultation["id"], "start": world.at(1, 0), "end": world.at(40, 0)}
    refused = pk.get("/v1/availability", query_string=window, headers={"Accept-Language": "ar"})
    assert refused.status_code == 422 and refused.get_json()["code"] == "validation_error"
    assert refused.headers["Content-Language"] == "ar" and ARABIC.search(refused.get_json()["detail"])
