"""A returning patient's personal booking link in a real browser: the clinic issues it after the
consultation, the page opened with it greets the patient and books their microneedling session
(arrival, numbing and needling shown) with no details form, and the manage link cancels it."""

from __future__ import annotations

import re
from datetime import timedelta

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select

from .conftest import Site
from .test_pages import (
    accessible,
    alert_says,
    api,
    focused_id,
    hold_first,
    next_monday,
    no_script_errors,
    shot,
    slots,
    visible,
    wait,
)


def issue_link(site: Site, patient_id: str) -> str:
    status, link = api(
        site,
        "POST",
        f"/v1/patients/{patient_id}/booking-links",
        {"treatment_type_id": site.microneedling_id},
        key=site.admin,
    )
    assert status == 201, link
    assert link["url"] == f"{site.base}/book/test-clinic#invite={link['secret']}"
    return link["url"]


def test_a_returning_patient_books_a_session_through_their_link_and_cancels_it(site, driver):
    patient_id, name = site.patients[0]  # her consultation was nine days ago
    driver.get(issue_link(site, patient_id))
    greeting = visible(driver, "#greeting")
    assert greeting.text.startswith(f"Welcome back, {name.split()[0]}.")
    select = Select(driver.find_element(By.ID, "treatment"))
    wait(driver, lambda d: select.first_selected_option.text.startswith("Microneedling session"))
    shot(driver, "20-invite-start")
    accessible(driver, "20-invite-start")

    # Two weeks on, so the manage link is well before its 24-hour cut-off whatever today is.
    driver.find_element(By.ID, "show-times").click()
    visible(driver, "#step-slots")
    wait(driver, lambda d: focused_id(d) == "slots-heading")
    monday = next_monday() + timedelta(days=7)
    for _ in range(2):
        driver.find_element(By.ID, "next-week").click()
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f"button.slot[data-starts-at^='{monday.isoformat()}']"))
    first = slots(driver)[0].text.replace("\n", " ")
    visit = (
        r"09:00 Dr Amara Okafor arrive 09:00, numbing 09:00\N{EN DASH}09:30, "
        r"needling 09:30\N{EN DASH}\d\d:\d\d, done by \d\d:\d\d"
    )
    assert re.search(visit, first), first
    shot(driver, "21-invite-slots")
    accessible(driver, "21-invite-slots")

    chosen = hold_first(driver)
    assert chosen["starts-at"].startswith(f"{monday.isoformat()}T09:00")
    assert driver.find_element(By.ID, "details-heading").text == "3. Confirm your booking"
    assert not driver.find_element(By.ID, "name").is_displayed()  # no details form: the link says who
    assert not driver.find_element(By.ID, "accept-terms").is_displayed()
    shot(driver, "22-invite-confirm")
    accessible(driver, "22-invite-confirm")

    driver.find_element(By.ID, "book").click()
    visible(driver, "#step-done")
    wait(driver, lambda d: focused_id(d) == "done-heading")
    assert "Microneedling session" in driver.find_element(By.ID, "confirmation").text
    assert len(driver.find_elements(By.CSS_SELECTOR, "#pre-care li")) > 1  # a session's pre-care
    manage = driver.find_element(By.ID, "manage-link").get_attribute("href")
    token = manage.split("#", 1)[1]
    status, managed = api(site, "GET", f"/v1/manage/{token}")
    assert status == 200, managed
    assert (managed["appointment"]["patient_id"], managed["appointment"]["starts_at"]) == (
        patient_id,
        chosen["starts-at"],
    )
    shot(driver, "23-invite-done")
    accessible(driver, "23-invite-done")

    driver.get(manage)
    visible(driver, "#booking")
    assert "Microneedling session" in driver.find_element(By.ID, "details").text
    driver.find_element(By.ID, "cancel").click()
    wait(driver, lambda d: focused_id(d) == "cancel-no")
    driver.find_element(By.ID, "cancel-yes").click()
    visible(driver, "#ended")
    assert "cancelled" in driver.find_element(By.ID, "ended-text").text
    status, ended = api(site, "GET", f"/v1/manage/{token}")
    assert (status, ended.get("code")) == (410, "manage_link_ended"), ended
    shot(driver, "24-invite-cancelled")
    no_script_errors(driver)


def test_a_link_that_names_no_patient_says_so_and_the_page_books_as_a_new_patient(site, driver):
    driver.get(f"{site.book_url()}#invite=bl_not-a-real-link")
    alert_says(driver, "could not find this personal booking link")
    assert driver.find_element(By.ID, "greeting").get_attribute("hidden") is not None
    wait(driver, EC.element_to_be_clickable((By.ID, "show-times")))
    shot(driver, "25-invite-unknown")
    accessible(driver, "25-invite-unknown")
    no_script_errors(driver)
