"""What a patient reads follows their language: the patient's own `language` on a manage link, else
the request's Accept-Language, else English; `Content-Language` says which. Codes never change."""

from __future__ import annotations

import re

from models import Patient

from ..helpers import assert_problem
from .test_manage_links import _page_booking
from .test_publishable_keys import NEW_PATIENT, _hold, publishable

ARABIC = re.compile(r"[\u0600-\u06FF]")
ARABIC_HEADER = {"Accept-Language": "ar-EG,ar;q=0.9,en;q=0.5"}


def _patient_of(db, booked) -> Patient:
    return db.get(Patient, booked["appointment"]["patient_id"])


def test_an_arabic_accept_language_gives_an_arabic_refusal_with_the_same_code_and_facts(admin, world):
    pk = publishable(admin)
    english = assert_problem(_hold(pk, world, starts_at=world.at(0, 9)), 422, "too_soon")
    refused = pk.post(
        "/v1/booking/holds",
        json={k: v for k, v in world.slot(treatment_type_id=world.consultation["id"], starts_at=world.at(0, 9)).items()
              if k != "patient_id"},
        headers=ARABIC_HEADER,
    )  # fmt: skip
    arabic = assert_problem(refused, 422, "too_soon")
    assert refused.headers["Content-Language"] == "ar" and "Accept-Language" in refused.headers["Vary"]
    assert ARABIC.search(arabic["detail"]) and ARABIC.search(arabic["title"]), arabic
    assert not ARABIC.search(english["detail"]) and english["title"] == "Unprocessable Content"
    # The facts stay what a program reads: the same instant, RFC 3339; only the words changed.
    assert arabic["earliest_start"] == english["earliest_start"]
    assert arabic["min_notice_minutes"] == english["min_notice_minutes"] == 120
    assert "ساعتان" in arabic["detail"]  # two hours, as Babel writes it in Arabic
    assert "2 hours" in english["detail"] and "Monday, January 4, 2027" in english["detail"]


def test_a_refusal_shown_to_a_patient_is_in_their_words_in_english_too(admin, world):
    pk = publishable(admin)
    held = _hold(pk, world, starts_at=world.at(0, 9))
    assert held.headers["Content-Language"] == "en"
    assert assert_problem(held, 422, "too_soon")["detail"].startswith("This time is too soon")


def test_unknown_or_unsupported_languages_fall_back_to_english(admin, world):
    pk = publishable(admin)
    for header in ("fr-FR,fr;q=0.9", "xx", "*", "!!", "de;q=1, zz;q=0.5"):
        refused = pk.post(
            "/v1/booking/holds",
            json={k: v for k, v in world.slot(starts_at=world.at(1, 10)).items() if k != "patient_id"},
            headers={"Accept-Language": header},
        )
        body = assert_problem(refused, 422, "consultation_required")
        assert refused.headers["Content-Language"] == "en", header
        assert not ARABIC.search(body["detail"]) and "consultation" in body["detail"]


def test_an_arabic_booking_page_reads_its_lists_and_books_with_the_patients_language(admin, world, db):
    pk = publishable(admin)
    listed = pk.get("/v1/booking/clinics", headers=ARABIC_HEADER)
    assert listed.status_code == 200 and listed.headers["Content-Language"] == "ar"
    token = _hold(pk, world, starts_at=world.at(3, 10)).get_json()["hold_token"]
    booked = pk.post(
        "/v1/booking/appointments",
        json={"hold_token": token, "patient": {**NEW_PATIENT, "language": "ar"}},
        headers={"Accept-Language": "en"},  # the registering patient's own language wins
    )
    assert booked.status_code == 201, booked.get_json()
    body = booked.get_json()
    assert (body["language"], body["direction"], booked.headers["Content-Language"]) == ("ar", "rtl", "ar")
    assert _patient_of(db, body).language == "ar"


def test_the_patients_language_wins_over_the_header_on_a_manage_link(admin, world, db):
    world.consulted()
    session = world.book(starts_at=world.at(3, 10))  # a microneedling session: it has pre-care
    token = session["manage_token"]
    admin.patch(f"/v1/patients/{session['patient_id']}", json={"language": "ar"}).get_json()
    pk = publishable(admin)

    shown = pk.get(f"/v1/manage/{token}", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert shown.status_code == 200, shown.get_json()
    body = shown.get_json()
    assert shown.headers["Content-Language"] == "ar"
    assert (body["language"], body["direction"]) == ("ar", "rtl")
    assert body["pre_care"] and all(ARABIC.search(line) for line in body["pre_care"])
    assert "مكياج" in " ".join(body["pre_care"])  # "no makeup", rule 10
    # Times as the patient reads them: Babel's Arabic, on the clinic's clock (London, GMT in January).
    assert "الخميس" in body["display"]["starts_at"] and "10:00" in body["display"]["starts_at"]
    assert "10:30" in body["display"]["procedure_starts_at"]  # after 30 minutes of numbing
    assert body["appointment"]["starts_at"] == "2027-01-07T10:00:00+00:00"  # the data stays data

    # No language of their own: the request's; an unsupported one of their own: the request's, else English.
    _patient_of_session = db.get(Patient, session["patient_id"])
    for own, header, expected in ((None, "ar", "ar"), ("fr-CA", "ar", "ar"), ("fr-CA", None, "en"), (None, None, "en")):
        admin.patch(f"/v1/patients/{session['patient_id']}", json={"language": own})
        db.refresh(_patient_of_session)
        assert _patient_of_session.language == own
        answer = pk.get(f"/v1/manage/{token}", headers={"Accept-Language": header} if header else {})
        assert answer.headers["Content-Language"] == expected, (own, header)
        assert answer.get_json()["direction"] == ("rtl" if expected == "ar" else "ltr")
        assert "Come with clean, dry skin and no makeup." in answer.get_json()["pre_care"] or expected == "ar"


def test_a_manage_links_refusals_are_in_the_patients_language(admin, world, clock):
    pk = publishable(admin)
    booked = _page_booking(pk, world)  # Thursday 7 January 10:00 London
    admin.patch(f"/v1/patients/{booked['appointment']['patient_id']}", json={"language": "ar-SA"})
    token = booked["manage_token"]
    clock.advance(days=2, hours=3)  # inside the 24-hour cut-off
    refused = pk.post(f"/v1/manage/{token}/cancel", json={}, headers={"Accept-Language": "en"})
    body = assert_problem(refused, 422, "cancellation_window_passed")
    assert refused.headers["Content-Language"] == "ar" and ARABIC.search(body["detail"])
    assert body["deadline"] == "2027-01-06T10:00:00+00:00" and "الأربعاء" in body["detail"]  # Wednesday
    clock.advance(hours=22, minutes=30)  # 09:30 on the day: the patient checks in, the link ends
    assert admin.post(f"/v1/appointments/{booked['appointment']['id']}/check-in").status_code == 200
    ended = pk.get(f"/v1/manage/{token}")
    assert assert_problem(ended, 410, "manage_link_ended") and ARABIC.search(ended.get_json()["detail"])
    assert ended.headers["Content-Language"] == "ar"


def test_a_refusal_with_no_patient_message_stays_english_and_says_so(admin, world):
    pk = publishable(admin)
    unknown = pk.get("/v1/manage/mt_nothing", headers=ARABIC_HEADER)  # not_found has a patient message
    assert unknown.headers["Content-Language"] == "ar"
    other_origin = pk.get("/v1/booking/clinics", headers={**ARABIC_HEADER, "Origin": "https://elsewhere.example"})
    body = assert_problem(other_origin, 403, "origin_not_allowed")  # for the page's author, not the patient
    assert other_origin.headers["Content-Language"] == "en" and not ARABIC.search(body["detail"])


def test_staff_routes_stay_in_english_whatever_the_header(admin, world):
    refused = admin.post("/v1/holds", json=world.slot(starts_at=world.at(1, 10)), headers=ARABIC_HEADER)
    body = assert_problem(refused, 422, "consultation_required")
    assert "Content-Language" not in refused.headers and not ARABIC.search(body["detail"] + body["title"])


def test_a_patients_language_is_a_bcp_47_tag(admin):
    made = admin.create("/v1/patients", {"name": "Layla Saad", "language": "ar-EG"})
    assert made["language"] == "ar-EG"
    assert admin.create("/v1/patients", {"name": "No Language"})["language"] is None
    for bad in ("not a tag", "xx-YY", "12", ""):
        refused = admin.post("/v1/patients", json={"name": "Bad", "language": bad})
        assert "language" in assert_problem(refused, 422, "validation_error")["errors"], bad


def test_a_replayed_answer_keeps_the_language_it_was_given_in(admin, world):
    pk = publishable(admin)
    slot = {k: v for k, v in world.slot(starts_at=world.at(1, 10)).items() if k != "patient_id"}
    first = pk.post("/v1/booking/holds", json=slot, headers={**ARABIC_HEADER, "Idempotency-Key": "k-1"})
    again = pk.post("/v1/booking/holds", json=slot, headers={"Accept-Language": "en", "Idempotency-Key": "k-1"})
    assert assert_problem(first, 422, "consultation_required") == assert_problem(again, 422, "consultation_required")
    assert again.headers["Idempotent-Replayed"] == "true" and again.headers["Content-Language"] == "ar"
