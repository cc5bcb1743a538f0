"""The catalogs (booking/i18n) hold every message the code uses (the reference pages' words too),
Arabic translates all of them, and the compiled .mo files are the .po files of the work tree. No
database."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from booking import i18n
from booking.i18n import Text, problems

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "booking" / "i18n" / "messages.pot"
LANGUAGES = [lang for lang in i18n.SUPPORTED if lang != i18n.DEFAULT]  # English is the message ids


def _po(language: str):
    with (i18n.TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=language)


def _strings(value) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _ids(catalog) -> set:
    return {message.id for message in catalog if message.id}


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """What pybabel extracts from the code now, as `make translations-update` does."""
    out = tmp_path_factory.mktemp("i18n") / "messages.pot"
    pybabel = Path(sys.executable).parent / "pybabel"
    subprocess.run(
        [str(pybabel), "extract", "-F", "babel.cfg", "-k", "N_", "--no-location", "-o", str(out), "api", "booking"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with out.open("rb") as f:
        return read_po(f)


def test_every_message_the_code_uses_is_in_the_template_and_every_catalog(extracted):
    used = _ids(extracted)
    assert len(used) > 30
    with TEMPLATE.open("rb") as f:
        assert _ids(read_po(f)) == used, "run `make translations-update` and translate what is new"
    for language in LANGUAGES:
        assert _ids(_po(language)) == used, language


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_catalog_translates_everything_with_no_fuzzy_entry_and_the_same_placeholders(language):
    catalog = _po(language)
    for message in catalog:
        if not message.id:
            continue
        assert not message.fuzzy, message.id
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"untranslated: {message.id!r}"
        if isinstance(message.id, tuple):
            assert len(strings) == catalog.num_plurals, message.id
    assert not catalog.obsolete
    problems_found = [(message.id, errors) for message, errors in catalog.check() if errors]
    assert problems_found == []  # python-format: the same %(name)s placeholders as the English


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalog_is_the_po_of_the_work_tree(language):
    """`make install` compiles the .mo; one older than its .po would show yesterday's words."""
    path = i18n.TRANSLATIONS / language / "LC_MESSAGES"
    assert (path / "messages.mo").exists(), "run `make install` (pybabel compile)"
    with (path / "messages.mo").open("rb") as f:
        compiled = {_strings(m.id): _strings(m.string) for m in read_mo(f) if m.id}
    source = {_strings(m.id): _strings(m.string) for m in _po(language) if m.id}
    assert compiled == source, "run `make translations` (pybabel compile)"


def test_every_patient_message_renders_in_every_language():
    """Each code's words with its facts, as the domain raises them (instants in the clinic's zone)."""
    at = datetime(2027, 3, 30, 10, 0, tzinfo=ZoneInfo("Asia/Dubai"))
    facts = {
        "min_notice_minutes": 120,
        "earliest_start": at.isoformat(),
        "latest_start": at.isoformat(),
        "horizon_days": 90,
        "grid_minutes": 15,
        "cancellation_cutoff_hours": 24,
        "deadline": at.isoformat(),
        "date": "2027-03-30",
        "what": "practitioner",
    }
    for language in i18n.SUPPORTED:
        t = Text(language)
        for code in problems.DETAILS:
            status = 404 if code == "not_found" else 422
            title, detail = problems.text(code, status, facts, t) or ("", "")
            assert title and detail and "%(" not in detail, (language, code)
    arabic = problems.text("too_soon", 422, facts, Text("ar"))
    assert arabic and "الثلاثاء" in arabic[1] and "ساعتان" in arabic[1]  # Tuesday; two hours
    assert problems.text("too_soon", 422, {}, Text("ar")) is None  # a fact missing: English stays
    assert problems.text("origin_not_allowed", 403, {}, Text("ar")) is None


@pytest.mark.parametrize(
    ("tags", "language", "direction"),
    [
        (("ar",), "ar", "rtl"),
        (("ar-EG",), "ar", "rtl"),
        (("ar_SA",), "ar", "rtl"),
        (("fr", "ar"), "ar", "rtl"),
        (("fr",), "en", "ltr"),
        (("xx-YY", None, ""), "en", "ltr"),
        (("not a tag",), "en", "ltr"),
        ((), "en", "ltr"),
    ],
)
def test_the_first_supported_tag_wins_else_english(tags, language, direction):
    text = Text.of(*tags)
    assert (text.language, text.direction) == (language, direction)


def test_numbers_durations_and_instants_are_babels_in_the_instants_own_zone():
    london, utc = ZoneInfo("Europe/London"), ZoneInfo("UTC")
    at = datetime(2027, 3, 28, 0, 30, tzinfo=utc).astimezone(london)
    assert Text("en").when(at) == "Sunday, March 28, 2027, 12:30\u202fAM"  # GMT still: the clocks go on at 01:00
    an_hour_later = datetime(2027, 3, 28, 1, 30, tzinfo=utc).astimezone(london)
    assert Text("en").when(an_hour_later) == "Sunday, March 28, 2027, 2:30\u202fAM"  # BST
    assert Text("ar").when(at).startswith("الأحد")
    assert Text("en").duration(timedelta(hours=24)) == "24 hours"
    assert Text("en").number(1200) == "1,200"
    with pytest.raises(ValueError):
        i18n.parse_tag("en GB")


def test_every_page_string_has_an_arabic_translation(tmp_path):
    """The reference pages' words (api/static/pages: the templates' and the scripts' `_()`), as
    pybabel extracts them, each translated into Arabic: Arabic words, the same placeholders (only a
    message of placeholders and punctuation, such as the list separator, may have no Arabic letter)."""
    out = tmp_path / "pages.pot"
    pybabel = Path(sys.executable).parent / "pybabel"
    subprocess.run(
        [str(pybabel), "extract", "-F", "babel.cfg", "-o", str(out), "api"], cwd=ROOT, check=True, capture_output=True
    )
    with out.open("rb") as f:
        extracted = [
            m for m in read_po(f) if m.id and any(path.startswith("api/static/pages/") for path, _ in m.locations)
        ]
    pages = {m.id for m in extracted}
    files = {path.split(":")[0] for m in extracted for path, _ in m.locations}
    assert (
        len(pages) > 100
        and {"api/static/pages/book.html", "api/static/pages/common.js", "api/static/pages/slots.js"} <= files
    )
    arabic = {m.id: m.string for m in _po("ar") if m.id}
    placeholder = re.compile(r"%\(\w+\)s")
    for message in sorted(pages):
        words = arabic.get(message)
        assert words, f"no Arabic for the page string {message!r}"
        assert re.search("[\u0600-\u06ff]", words) or not re.search("[A-Za-z]{2,}", placeholder.sub("", message)), (
            message,
            words,
        )
        assert sorted(placeholder.findall(words)) == sorted(placeholder.findall(message)), message
