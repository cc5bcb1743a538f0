"""The reference pages in a real browser: the whole booking path, a hold expiring, a slot taken by
a concurrent booking, cancel and reschedule through the manage link, the day sheet showing two
patients interleaved in one practitioner's numbing gap; axe-core on every page."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from models import Hold

from .conftest import ARTIFACTS, AXE, Site

WAIT = 15  # seconds, the most any step waits for the page


# --- helpers ----------------------------------------------------------------------------------------


def api(site: Site, method: str, path: str, body: dict | None = None, key: str | None = None) -> tuple[int, dict]:
    """A call as a server makes it (no Origin): the test's other client."""
    request = urllib.request.Request(
        site.base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key or site.pk}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def wait(driver, condition, timeout: float = WAIT):
    try:
        return WebDriverWait(driver, timeout).until(condition)
    except TimeoutException:
        shot(driver, "timed-out")  # what the page showed when the wait gave up
        alert = driver.find_elements(By.ID, "alert")
        raise AssertionError(
            f"timed out on {driver.current_url}; alert: {alert[0].text if alert else None!r}; "
            f"console: {driver.get_log('browser')[-5:]}; requests: "
            + str(
                driver.execute_script(
                    "return performance.getEntriesByType('resource').map(e => [e.name, Math.round(e.duration)])"
                )
            )
        ) from None


def visible(driver, css: str):
    return wait(driver, EC.visibility_of_element_located((By.CSS_SELECTOR, css)))


def alert_says(driver, pattern: str) -> str:
    """The page's alert region shows text matching `pattern` (and has the focus, for keyboard users)."""
    wait(driver, lambda d: re.search(pattern, d.find_element(By.ID, "alert").text or ""))
    return driver.find_element(By.ID, "alert").text


def focused_id(driver) -> str:
    return driver.switch_to.active_element.get_attribute("id")


def shot(driver, name: str) -> None:
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def accessible(driver, name: str) -> None:
    """axe-core finds no serious or critical violation (WCAG 2.x A and AA) on the page as it is now."""
    driver.execute_script(AXE.read_text())
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const tags = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'];"
        "axe.run(document, {runOnly: {type: 'tag', values: tags}})"
        ".then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target)}))))"
        ".catch(e => done([{id: 'axe-error', impact: 'critical', nodes: [String(e)]}]));"
    )
    (ARTIFACTS / f"{name}.axe.json").write_text(json.dumps(result, indent=2))
    bad = [v for v in result if v["impact"] in ("serious", "critical")]
    assert not bad, (name, bad)


def no_script_errors(driver) -> None:
    """Nothing on the console but refused requests the page handled: no CSP violation, no exception."""
    logs = driver.get_log("browser")
    handled = re.compile(
        r"/v1/\S* - Failed to load resource: the server responded with a status of 4\d\d|/favicon.ico - "
    )
    bad = [e for e in logs if e["level"] == "SEVERE" and not handled.search(e["message"])]
    assert not bad, bad


def next_monday() -> date:
    today = datetime.now(UTC).date()
    return today + timedelta(days=7 - today.weekday())


def open_slots(driver, site: Site, treatment: str = "Skin consultation") -> None:
    """The booking page, a treatment and the clinic chosen, next week's times shown."""
    driver.get(site.book_url())
    select = Select(wait(driver, EC.element_to_be_clickable((By.ID, "treatment"))))
    wait(driver, lambda d: len(select.options) == 2)
    select.select_by_visible_text(next(o.text for o in select.options if o.text.startswith(treatment)))
    driver.find_element(By.ID, "show-times").click()
    visible(driver, "#step-slots")
    wait(driver, lambda d: focused_id(d) == "slots-heading")
    driver.find_element(By.ID, "next-week").click()
    monday = next_monday().isoformat()
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f"button.slot[data-starts-at^='{monday}']"))


def slots_ready(driver):
    """The search the last click started has answered (the list is aria-busy while it runs)."""
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#step-slots:not([hidden]) #slots:not([aria-busy]) button"))


def slots(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#slots button.slot")


def hold_first(driver) -> dict:
    button = slots(driver)[0]
    chosen = {k: button.get_attribute(f"data-{k}") for k in ("starts-at", "practitioner-id", "room-id")}
    button.click()
    visible(driver, "#step-details")
    wait(driver, lambda d: focused_id(d) == "details-heading")
    return chosen


def fill_details(driver, name="Nour Haddad", email="nour@example.com", phone="020 7946 0123") -> None:
    for field, value in (("name", name), ("email", email), ("phone", phone)):
        element = driver.find_element(By.ID, field)
        element.clear()
        element.send_keys(value)
    terms = driver.find_element(By.ID, "accept-terms")
    if not terms.is_selected():
        terms.click()


def book_by_api(site: Site, day: date, hour: int = 9) -> dict:
    """A consultation booked as a visitor would, through the API: (slot, booking answer)."""
    start = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    window = urllib.parse.urlencode(
        {
            "clinic_id": site.clinic_id,
            "treatment_type_id": site.consultation_id,
            "start": start.isoformat(),
            "end": (start + timedelta(hours=3)).isoformat(),
            "limit": 1,
        }
    )
    status, found = api(site, "GET", f"/v1/availability?{window}")
    assert status == 200 and found["data"], found
    slot = found["data"][0]
    fields = ("clinic_id", "practitioner_id", "room_id", "treatment_type_id", "starts_at")
    status, held = api(site, "POST", "/v1/booking/holds", {k: slot[k] for k in fields})
    assert status == 201, held
    patient = {"name": "Other Visitor", "email": "other@example.com", "accept_terms": True}
    status, booked = api(
        site, "POST", "/v1/booking/appointments", {"hold_token": held["hold_token"], "patient": patient}
    )
    assert status == 201, booked
    return booked


# --- the tests ----------------------------------------------------------------------------------------


def test_the_whole_booking_path(site, driver):
    """Treatment and clinic, next week's times with arrival, numbing and needling shown, a hold with
    its countdown, the details, the booking, the confirmation with pre-care and the manage link."""
    driver.get(site.book_url())
    select = Select(wait(driver, EC.element_to_be_clickable((By.ID, "treatment"))))
    wait(driver, lambda d: len(select.options) == 2)
    assert sorted(o.text.split(" (")[0] for o in select.options) == ["Microneedling session", "Skin consultation"]
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("dir") == "ltr"
    shot(driver, "01-book-start")
    accessible(driver, "01-book-start")

    # A first visit is refused a microneedling session (consultation first): the page says so.
    select.select_by_visible_text(next(o.text for o in select.options if o.text.startswith("Microneedling")))
    assert "numbing cream is applied and works for 30 minutes" in driver.find_element(By.ID, "treatment-help").text
    driver.find_element(By.ID, "show-times").click()
    alert_says(driver, "consultation before a microneedling session")
    assert not slots(driver)

    open_slots(driver, site)
    shot(driver, "02-book-slots")
    accessible(driver, "02-book-slots")
    first = slots(driver)[0].text.replace("\n", " ")
    visit = r"09:00 Dr Amara Okafor arrive 09:00, consultation 09:00\N{EN DASH}\d\d:\d\d, done by"
    assert re.search(visit, first), first
    chosen = hold_first(driver)
    assert chosen["starts-at"].startswith(f"{next_monday().isoformat()}T09:00")
    countdown = driver.find_element(By.ID, "countdown").text
    assert re.fullmatch(r"(10:00|9:[0-5]\d)", countdown), countdown
    wait(driver, lambda d: d.find_element(By.ID, "countdown").text != countdown)  # it counts down

    # Consent is required: the page says so at the field, and focuses it.
    fill_details(driver)
    driver.find_element(By.ID, "accept-terms").click()  # unticked
    driver.find_element(By.ID, "book").click()
    visible(driver, "#accept_terms-error")
    assert focused_id(driver) == "accept-terms"
    shot(driver, "03-book-details")
    accessible(driver, "03-book-details")

    driver.find_element(By.ID, "accept-terms").click()
    driver.find_element(By.ID, "book").click()
    visible(driver, "#step-done")
    wait(driver, lambda d: focused_id(d) == "done-heading")
    assert "Skin consultation" in driver.find_element(By.ID, "confirmation").text
    assert driver.find_elements(By.CSS_SELECTOR, "#pre-care li")
    link = driver.find_element(By.ID, "manage-link").get_attribute("href")
    assert link.startswith(f"{site.base}/book/test-clinic/manage#")
    shot(driver, "04-book-done")
    accessible(driver, "04-book-done")

    token = link.split("#", 1)[1]
    status, managed = api(site, "GET", f"/v1/manage/{token}")
    assert status == 200 and managed["appointment"]["starts_at"] == chosen["starts-at"], managed
    no_script_errors(driver)


def test_a_hold_expiring(site, driver):
    """The server lets the hold go (its expiry passed): booking it says so. Then the countdown
    reaching zero on the page closes the form and says why."""
    open_slots(driver, site)
    hold_first(driver)
    engine, db = site.session()
    with db:
        db.execute(sa.update(Hold).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        db.commit()
    engine.dispose()
    fill_details(driver, email="late@example.com")
    driver.find_element(By.ID, "book").click()
    assert "ran out" in alert_says(driver, "hold on this time ran out")
    assert focused_id(driver) == "alert"
    shot(driver, "05-hold-expired-server")

    driver.find_element(By.ID, "change-time").click()
    slots_ready(driver)
    hold_first(driver)
    driver.execute_script("window.__testClockOffset = 11 * 60 * 1000")  # 11 minutes on: past the 10
    alert_says(driver, "ran out")
    wait(driver, lambda d: d.find_element(By.ID, "countdown").text == "0:00")
    assert not driver.find_element(By.ID, "book").is_enabled()
    assert focused_id(driver) == "change-time"
    shot(driver, "06-hold-expired-countdown")
    accessible(driver, "06-hold-expired-countdown")
    driver.execute_script("window.__testClockOffset = 0")


def test_a_slot_taken_by_a_concurrent_booking(site, driver):
    """The page shows a time; another visitor books it first; choosing it says it was just taken
    and the times shown are refreshed without it."""
    open_slots(driver, site)
    button = slots(driver)[0]
    taken = button.get_attribute("data-starts-at")
    slot = {
        "clinic_id": site.clinic_id,
        "treatment_type_id": site.consultation_id,
        "practitioner_id": button.get_attribute("data-practitioner-id"),
        "room_id": button.get_attribute("data-room-id"),
        "starts_at": taken,
    }
    status, held = api(site, "POST", "/v1/booking/holds", slot)
    assert status == 201, held
    patient = {"name": "Quick Visitor", "email": "quick@example.com", "accept_terms": True}
    status, booked = api(
        site, "POST", "/v1/booking/appointments", {"hold_token": held["hold_token"], "patient": patient}
    )
    assert status == 201, booked

    button.click()
    alert_says(driver, "just taken")
    assert focused_id(driver) == "alert"
    wait(driver, lambda d: slots(d) and all(b.get_attribute("data-starts-at") != taken for b in slots(d)))
    assert driver.find_element(By.ID, "step-details").get_attribute("hidden") is not None
    shot(driver, "07-slot-taken")
    accessible(driver, "07-slot-taken")


def test_cancel_and_reschedule_through_the_manage_link(site, driver):
    booked = book_by_api(site, next_monday() + timedelta(days=2))
    old_start = booked["appointment"]["starts_at"]
    driver.get(f"{site.base}/book/test-clinic/manage#{booked['manage_token']}")
    visible(driver, "#booking")
    assert "Skin consultation" in driver.find_element(By.ID, "details").text
    assert driver.find_elements(By.CSS_SELECTOR, "#pre-care li")
    shot(driver, "08-manage")
    accessible(driver, "08-manage")

    driver.find_element(By.ID, "reschedule").click()
    visible(driver, "#step-slots")
    wait(driver, lambda d: focused_id(d) == "slots-heading")
    driver.find_element(By.ID, "next-week").click()
    monday = next_monday().isoformat()
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f"button.slot[data-starts-at^='{monday}']"))
    target = slots(driver)[3]
    new_start = target.get_attribute("data-starts-at")
    assert new_start != old_start
    shot(driver, "09-manage-slots")
    target.click()
    alert_says(driver, "moved to")
    new_token = driver.execute_script("return decodeURIComponent(location.hash.slice(1))")
    assert new_token != booked["manage_token"]
    assert api(site, "GET", f"/v1/manage/{booked['manage_token']}")[0] == 410  # the old link ended
    status, moved = api(site, "GET", f"/v1/manage/{new_token}")
    assert status == 200 and moved["appointment"]["starts_at"] == new_start, moved
    shot(driver, "10-manage-moved")

    driver.find_element(By.ID, "cancel").click()
    wait(driver, lambda d: focused_id(d) == "cancel-no")
    driver.find_element(By.ID, "cancel-yes").click()
    visible(driver, "#ended")
    assert "cancelled" in driver.find_element(By.ID, "ended-text").text
    status, ended = api(site, "GET", f"/v1/manage/{new_token}")
    assert (status, ended.get("code")) == (410, "manage_link_ended"), ended
    shot(driver, "11-manage-cancelled")
    accessible(driver, "11-manage-cancelled")

    driver.get(f"{site.base}/book/test-clinic/manage#{new_token}")  # the ended link says so
    visible(driver, "#ended")
    assert "no longer manages" in driver.find_element(By.ID, "ended-text").text
    no_script_errors(driver)


def test_the_day_sheet_shows_two_patients_interleaved_in_a_numbing_gap(site, driver):
    """A arrives at 10:00 (cream to 10:05, numbing to 10:30, needling to 11:00); B arrives at 10:15,
    inside A's numbing, and is needled at 11:15: one practitioner's lane holds both, B's cream drawn
    inside A's numbing gap; each room's lane holds one."""
    day = next_monday() + timedelta(days=4)
    (a_id, a_name), (b_id, b_name) = site.patients
    at = lambda h, m=0: datetime(day.year, day.month, day.day, h, m, tzinfo=UTC).isoformat()  # noqa: E731
    base = {
        "clinic_id": site.clinic_id,
        "practitioner_id": site.practitioner_id,
        "treatment_type_id": site.microneedling_id,
    }
    for patient_id, room, start, needling in ((a_id, 0, at(10), None), (b_id, 1, at(10, 15), at(11, 15))):
        body = {**base, "patient_id": patient_id, "room_id": site.rooms[room], "starts_at": start}
        if needling:
            body["procedure_starts_at"] = needling
        status, answer = api(site, "POST", "/v1/appointments", body, key=site.admin)
        assert status == 201, answer

    driver.get(f"{site.base}/day-sheet")
    key = visible(driver, "#api-key")
    key.send_keys(site.admin)
    driver.find_element(By.ID, "load-clinics").click()
    wait(driver, lambda d: d.find_element(By.ID, "clinic").is_enabled())
    date_field = driver.find_element(By.ID, "date")
    driver.execute_script("arguments[0].value = arguments[1]", date_field, day.isoformat())
    driver.find_element(By.ID, "show-sheet").click()
    visible(driver, "#sheet")
    wait(driver, lambda d: focused_id(d) == "sheet-heading")

    lanes = driver.find_elements(By.CSS_SELECTOR, "#by-practitioner .lane")
    assert [lane.find_element(By.CLASS_NAME, "lane-label").text for lane in lanes] == ["Dr Amara Okafor"]
    blocks = lanes[0].find_elements(By.CSS_SELECTOR, ".block")
    names = {b.get_attribute("aria-label").split(" ")[0] for b in blocks}
    assert names == {a_name.split()[0], b_name.split()[0]}

    def block(who: str, phase: str):
        return next(
            b
            for b in blocks
            if b.get_attribute("aria-label").startswith(who) and b.get_attribute("data-phase") == phase
        )

    gap, cream = block(a_name, "numbing"), block(b_name, "numbing_application")
    # On the page as drawn: B's cream lies within A's numbing gap on the time axis, on its own row.
    g, c = gap.rect, cream.rect
    assert g["x"] <= c["x"] and c["x"] + c["width"] <= g["x"] + g["width"] + 1, (g, c)
    assert c["y"] != g["y"]
    assert "numbing 10:05\N{EN DASH}10:30" in gap.get_attribute("aria-label")
    assert "cream 10:15\N{EN DASH}10:20" in cream.get_attribute("aria-label")
    rooms = driver.find_elements(By.CSS_SELECTOR, "#by-room .lane")
    assert sorted(lane.find_element(By.CLASS_NAME, "lane-label").text for lane in rooms) == ["Room 1", "Room 2"]
    rows = driver.find_elements(By.CSS_SELECTOR, "#visits tbody tr")
    assert [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows] == [a_name, b_name]
    shot(driver, "12-day-sheet")
    accessible(driver, "12-day-sheet")
    no_script_errors(driver)


@pytest.mark.parametrize("page", ["/book/test-clinic", "/day-sheet"])
def test_phone_width(site, driver, page):
    """At 375px nothing scrolls sideways."""
    driver.set_window_size(375, 800)
    try:
        driver.get(site.base + page)
        visible(driver, "main")
        if page.startswith("/book"):
            open_slots(driver, site)
        width = driver.execute_script("return document.documentElement.scrollWidth")
        inner = driver.execute_script("return window.innerWidth")
        assert width <= inner, (width, inner)
        shot(driver, f"13-phone{page.replace('/', '-')}")
        accessible(driver, f"13-phone{page.replace('/', '-')}")
    finally:
        driver.set_window_size(1200, 900)
