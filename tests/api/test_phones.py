"""A patient's phone as a person writes it, answered as E.164; a national number is read in the
country of the organization's clinics, and refused when they are not all in one."""

from __future__ import annotations

import pytest

from ..helpers import assert_problem

LONDON, NEW_YORK = "Europe/London", "America/New_York"


def chain(caller, *zones: str):
    for n, zone in enumerate(zones):
        caller.make_clinic(name=f"Clinic {n}", timezone=zone)
    return caller


def phone_of(caller, typed: str):
    answer = caller.post("/v1/patients", json={"name": "Ada", "phone": typed})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["phone"]


def refused(caller, typed: str):
    answer = caller.post("/v1/patients", json={"name": "Ada", "phone": typed})
    assert_problem(answer, 422, "validation_error")
    return answer.get_json()["errors"]["phone"]


def test_an_international_number_as_people_write_it_is_stored_as_e164(admin):
    assert phone_of(admin, "+44 20 7946 0000") == "+442079460000"  # no clinic needed


def test_an_e164_number_is_unchanged(admin):
    assert phone_of(chain(admin, LONDON, NEW_YORK), "+12125550123") == "+12125550123"


def test_a_national_number_of_a_london_only_chain_is_british(admin):
    assert phone_of(chain(admin, LONDON, LONDON), "020 7946 0000") == "+442079460000"


def test_a_national_number_of_a_new_york_only_chain_is_american(admin):
    assert phone_of(chain(admin, NEW_YORK), "(212) 555-0123") == "+12125550123"


@pytest.mark.parametrize("typed", ["020 7946 0000", "(212) 555-0123"])
def test_a_national_number_of_a_chain_in_two_countries_must_carry_its_country_code(admin, typed):
    [message] = refused(chain(admin, LONDON, NEW_YORK), typed)
    assert "+<country code>" in message


def test_a_national_number_with_no_clinic_yet_must_carry_its_country_code(admin):
    [message] = refused(admin, "020 7946 0000")
    assert "+<country code>" in message


@pytest.mark.parametrize("garbage", ["not a number", "+44 20 79", "+1 000 000 0000", "020 7946 0000 ext. 12"])
def test_what_is_not_a_valid_number_is_a_422(admin, garbage):
    refused(chain(admin, LONDON), garbage)


def test_a_patch_reads_the_number_the_same_way_and_an_archived_clinic_no_longer_counts(admin):
    chain(admin, LONDON)
    new_york = admin.make_clinic(name="Manhattan", timezone=NEW_YORK)
    patient = admin.make_patient()
    path = f"/v1/patients/{patient['id']}"
    assert_problem(admin.patch(path, json={"phone": "020 7946 0000"}), 422, "validation_error")
    assert admin.delete(f"/v1/clinics/{new_york['id']}").status_code == 204
    answer = admin.patch(path, json={"phone": "020 7946 0001"})
    assert answer.status_code == 200 and answer.get_json()["phone"] == "+442079460001"
    assert admin.get(path).get_json()["phone"] == "+442079460001"
