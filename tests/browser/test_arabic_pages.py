"""The booking page in Arabic in a real browser: the page's language switch gives a right-to-left
page whose every word is Arabic but the clinic's own names, laid out right to left; a slot chosen,
held with its countdown and booked in Arabic, every API call the page makes asking for Arabic and
answered in it (the patient registered as Arabic-reading); the manage link in Arabic too; axe-core
on each Arabic page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select

from models import Patient

from .conftest import Site
from .test_pages import (
    accessible,
    api,
    fill_details,
    focused_id,
    hold_first,
    next_monday,
    no_script_errors,
    shot,
    slots,
    visible,
    wait,
)

ARABIC = re.compile(r"[\u0600-\u06FF]")
# What the page shows that is the clinic's data, not the page's words (and the switch's "English").
DATA = (
    "Skin consultation", "Microneedling session", "Dr Amara Okafor", "Soho", "1 Greek Street", "Europe/London",
    "Room 1", "Room 2", "English", "Nour Haddad", "nour@example.com",
)  # fmt: skip


# The page's API calls as it makes them: the language it asks for and the one the API answers in.
RECORD_CALLS = """
window.__calls = [];
const real = window.fetch;
window.fetch = (path, options) => real(path, options).then((response) => {
  window.__calls.push([path, options.headers["Accept-Language"], response.headers.get("Content-Language")]);
  return response;
});
"""


def shown(element) -> str:
    """An element's text without the bidi isolates the Arabic page puts around each filled-in value."""
    return re.sub("[\u2068\u2069]", "", element.text)


def untranslated(driver) -> list[str]:
    """The Latin words on the page as a person sees it, once the clinic's own names are taken out."""
    text = re.sub("[\u2068\u2069]", "", driver.execute_script("return document.body.innerText"))
    for name in DATA:
        text = text.replace(name, "")
    text = re.sub(r"https?://\S+", "", text)  # the manage link
    return re.findall(r"[A-Za-z]{2,}", text)


def test_the_arabic_booking_page_reads_right_to_left_and_books(site: Site, driver):
    driver.get(site.book_url())
    english = Select(wait(driver, EC.element_to_be_clickable((By.ID, "treatment"))))
    wait(driver, lambda d: len(english.options) == 2)
    switch = driver.find_element(By.CSS_SELECTOR, "nav.languages a[lang='ar']")
    assert switch.text == "العربية"
    switch.click()  # the page's own language switch

    wait(driver, lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ar")
    html = driver.find_element(By.TAG_NAME, "html")
    assert html.get_attribute("dir") == "rtl"
    assert driver.execute_script("return getComputedStyle(document.body).direction") == "rtl"
    assert driver.title == "احجز موعدًا"
    select = Select(wait(driver, EC.element_to_be_clickable((By.ID, "treatment"))))
    wait(driver, lambda d: len(select.options) == 2)
    assert driver.find_element(By.CSS_SELECTOR, "label[for='treatment']").text == "العلاج"
    assert ARABIC.search(driver.find_element(By.ID, "treatment-help").text)
    assert untranslated(driver) == []
    driver.execute_script(RECORD_CALLS)
    # Right to left: the title starts at the right, the language switch is at the header's other end.
    title = driver.find_element(By.ID, "clinic-title").rect
    back = driver.find_element(By.CSS_SELECTOR, "nav.languages a[lang='en']").rect
    assert back["x"] + back["width"] <= title["x"], (back, title)
    shot(driver, "14-book-arabic-start")
    accessible(driver, "14-book-arabic-start")

    # A first visit refused a session: the page's Arabic words for the API's code.
    select.select_by_visible_text(next(o.text for o in select.options if "Microneedling" in o.text))
    driver.find_element(By.ID, "show-times").click()
    wait(driver, lambda d: "استشارة" in d.find_element(By.ID, "alert").text)

    select.select_by_visible_text(next(o.text for o in select.options if "Skin consultation" in o.text))
    driver.find_element(By.ID, "show-times").click()
    visible(driver, "#step-slots")
    wait(driver, lambda d: focused_id(d) == "slots-heading")
    driver.find_element(By.ID, "next-week").click()
    monday = next_monday().isoformat()
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f"button.slot[data-starts-at^='{monday}']"))
    assert driver.find_element(By.ID, "week-label").text.startswith("أسبوع")
    first = slots(driver)[0]
    assert "\u2068" in first.text  # each value a bidi isolate
    assert re.search(r"الحضور 09:00، الاستشارة 09:00\N{EN DASH}\d\d:\d\d، الانتهاء بحلول", shown(first)), first.text
    time, phases = first.find_element(By.CLASS_NAME, "time").rect, first.find_element(By.CLASS_NAME, "phases").rect
    assert time["x"] > phases["x"], (time, phases)  # the time at the right, the phases to its left
    assert first.get_attribute("aria-label").startswith("احجز ")
    assert untranslated(driver) == []
    shot(driver, "15-book-arabic-slots")
    accessible(driver, "15-book-arabic-slots")

    chosen = hold_first(driver)
    assert chosen["starts-at"].startswith(f"{monday}T09:00")
    countdown = driver.find_element(By.ID, "countdown").text
    assert re.fullmatch(r"(10:00|9:[0-5]\d)", countdown), countdown  # Western digits, as the times
    assert ARABIC.search(driver.find_element(By.ID, "held-slot").text)
    fill_details(driver)
    driver.find_element(By.ID, "accept-terms").click()  # unticked: the field says why, in Arabic
    driver.find_element(By.ID, "book").click()
    visible(driver, "#accept_terms-error")
    assert driver.find_element(By.ID, "accept_terms-error").text == "يُرجى قبول شروط العيادة لإتمام الحجز."
    assert untranslated(driver) == []
    shot(driver, "16-book-arabic-details")
    accessible(driver, "16-book-arabic-details")

    driver.find_element(By.ID, "accept-terms").click()
    driver.find_element(By.ID, "book").click()
    visible(driver, "#step-done")
    assert driver.find_element(By.ID, "done-heading").text == "تم الحجز"
    pre_care = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#pre-care li")]
    assert pre_care and all(ARABIC.search(text) for text in pre_care), pre_care
    link = driver.find_element(By.ID, "manage-link").get_attribute("href")
    assert link.startswith(f"{site.base}/book/test-clinic/manage?lang=ar#"), link
    assert untranslated(driver) == []
    shot(driver, "17-book-arabic-done")
    accessible(driver, "17-book-arabic-done")

    calls = driver.execute_script("return window.__calls")
    assert {path.split("?")[0] for path, _, _ in calls} >= {
        "/v1/availability",
        "/v1/booking/holds",
        "/v1/booking/appointments",
    }
    assert all((sent, answered) == ("ar", "ar") for _, sent, answered in calls), calls  # the API answered in Arabic

    engine, db = site.session()
    with db:
        language = db.scalar(sa.select(Patient.language).where(Patient.email == "nour@example.com"))
    engine.dispose()
    assert language == "ar"  # the patient booked in Arabic: their reminders and manage link are too

    driver.get(link)  # the manage link opens in Arabic, right to left
    visible(driver, "#booking")
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("dir") == "rtl"
    assert driver.find_element(By.ID, "booking-heading").text == "الموعد"
    assert not driver.find_element(By.ID, "confirm-cancel").is_displayed()  # asked only once Cancel is chosen
    assert untranslated(driver) == []
    token = link.split("#", 1)[1]
    back = driver.find_element(By.CSS_SELECTOR, "nav.languages a[lang='en']").get_attribute("href")
    assert back.endswith(f"?lang=en#{token}")  # the switch keeps the token
    shot(driver, "18-manage-arabic")
    accessible(driver, "18-manage-arabic")
    no_script_errors(driver)


def test_the_arabic_day_sheet_draws_time_from_right_to_left(site: Site, driver):
    """The staff page in Arabic: its words from the catalog, and the timeline running right to left,
    so an earlier phase is drawn to the right of a later one."""
    day = next_monday() + timedelta(days=3)
    patient_id, name = site.patients[0]
    body = {
        "clinic_id": site.clinic_id, "practitioner_id": site.practitioner_id, "patient_id": patient_id,
        "treatment_type_id": site.microneedling_id, "room_id": site.rooms[0],
        "starts_at": datetime(day.year, day.month, day.day, 10, tzinfo=UTC).isoformat(),
    }  # fmt: skip
    status, answer = api(site, "POST", "/v1/appointments", body, key=site.admin)
    assert status == 201, answer

    driver.get(f"{site.base}/day-sheet?lang=ar")
    key = visible(driver, "#api-key")
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("dir") == "rtl"
    key.send_keys(site.admin)
    driver.find_element(By.ID, "load-clinics").click()
    wait(driver, lambda d: d.find_element(By.ID, "clinic").is_enabled())
    driver.execute_script("arguments[0].value = arguments[1]", driver.find_element(By.ID, "date"), day.isoformat())
    driver.find_element(By.ID, "show-sheet").click()
    visible(driver, "#sheet")
    assert shown(driver.find_element(By.ID, "sheet-heading")).startswith("جدول يوم")
    blocks = driver.find_elements(By.CSS_SELECTOR, "#by-practitioner .block")
    phase = {b.get_attribute("data-phase"): b for b in blocks}
    numbing, needling = phase["numbing"], phase["needling"]
    label = re.sub("[\u2068\u2069]", "", numbing.get_attribute("aria-label"))
    assert label == f"{name} التخدير 10:05\N{EN DASH}10:30", label
    assert numbing.rect["x"] > needling.rect["x"], (numbing.rect, needling.rect)  # earlier is further right
    data = {name, "Dr Amara Okafor", "Microneedling session", "Room 1", "Europe/London", "Soho", "UTC"}
    text = re.sub("[\u2068\u2069]", "", driver.execute_script("return document.body.innerText"))
    for value in sorted(data, key=len, reverse=True):
        text = text.replace(value, "")
    assert re.findall(r"[A-Za-z]{2,}", text.replace("nbk_", "").replace("English", "")) == []
    shot(driver, "19-day-sheet-arabic")
    accessible(driver, "19-day-sheet-arabic")
    no_script_errors(driver)


def test_the_arabic_page_at_phone_width(site: Site, driver):
    """At 375px the right-to-left page scrolls sideways no more than the English one does."""
    driver.set_window_size(375, 800)
    try:
        driver.get(f"{site.book_url()}?lang=ar")
        select = Select(wait(driver, EC.element_to_be_clickable((By.ID, "treatment"))))
        wait(driver, lambda d: len(select.options) == 2)
        select.select_by_visible_text(next(o.text for o in select.options if "Skin consultation" in o.text))
        driver.find_element(By.ID, "show-times").click()
        driver.find_element(By.ID, "next-week").click()
        monday = next_monday().isoformat()
        wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f"button.slot[data-starts-at^='{monday}']"))
        width = driver.execute_script("return document.documentElement.scrollWidth")
        inner = driver.execute_script("return window.innerWidth")
        assert width <= inner, (width, inner)
        shot(driver, "20-phone-book-arabic")
        accessible(driver, "20-phone-book-arabic")
    finally:
        driver.set_window_size(1200, 900)
