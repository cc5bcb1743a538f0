"""Phone numbers as people write them: E.164 out, national numbers read in one country."""

from __future__ import annotations

import pytest

from booking.domain.errors import InvalidInput
from booking.domain.phones import NEEDS_COUNTRY_CODE, needs_region, one_country, to_e164


@pytest.mark.parametrize(
    "typed, region, e164",
    [
        ("+44 20 7946 0000", None, "+442079460000"),
        ("+44 (0)20 7946 0000", None, "+442079460000"),
        ("020 7946 0000", "GB", "+442079460000"),
        ("(212) 555-0123", "US", "+12125550123"),
        ("212.555.0123", "US", "+12125550123"),
        ("+1 212 555 0123", "GB", "+12125550123"),  # an international number ignores the region
        ("+442079460000", None, "+442079460000"),  # E.164 already: unchanged
    ],
)
def test_a_number_as_a_person_writes_it_is_stored_as_e164(typed, region, e164):
    assert to_e164(typed, region) == e164


def test_a_national_number_without_a_country_says_to_write_the_country_code():
    with pytest.raises(InvalidInput) as refused:
        to_e164("020 7946 0000", None)
    assert refused.value.errors == {"phone": [NEEDS_COUNTRY_CODE]}
    assert "+<country code>" in NEEDS_COUNTRY_CODE


@pytest.mark.parametrize(
    "garbage, region",
    [
        ("call me maybe", "GB"),
        ("12", "GB"),
        ("+0447700900123", None),
        ("+44", None),
        ("+4477009001234567", None),
        ("+442079460000\n", None),
        ("+4\u0664\u0664\u0662\u0660\u0667\u0669\u0664\u0666\u0660\u0660\u0660\u0660", None),  # Arabic-Indic digits
        ("020 7946 0000", "US"),  # not a US number
        ("", "GB"),
    ],
)
def test_what_is_not_a_valid_number_is_refused_under_phone(garbage, region):
    with pytest.raises(InvalidInput) as refused:
        to_e164(garbage, region)
    assert set(refused.value.errors) == {"phone"}


def test_only_a_number_without_a_plus_needs_a_region():
    assert needs_region("020 7946 0000") and needs_region("0044 20 7946 0000")
    assert not needs_region(" +44 20 7946 0000")


def test_the_organization_s_country_is_the_one_all_its_zones_lie_in():
    countries = {"Europe/London": "GB", "America/New_York": "US", "America/Chicago": "US"}
    assert one_country(["Europe/London"], countries) == "GB"
    assert one_country(["America/New_York", "America/Chicago"], countries) == "US"
    assert one_country(["Europe/London", "America/New_York"], countries) is None
    assert one_country(["Europe/London", "Etc/UTC"], countries) is None  # a zone of no country
    assert one_country([], countries) is None


def test_the_bench_data_stores_numbers_as_the_api_would():
    from bench.make_data import phone

    for n in (0, 1, 4_567, 99_999, 100_000):
        assert to_e164(phone(n), None) == phone(n)
