"""A patient's contraindications keep their history: recorded when and by whom, resolved, never deleted."""

from __future__ import annotations

from datetime import UTC, datetime

from booking.services.patient_records import record_contraindications
from models import Patient

MONDAY = datetime(2031, 3, 3, 9, tzinfo=UTC)
TUESDAY = datetime(2031, 3, 4, 9, tzinfo=UTC)


def _history(patient: Patient) -> list[tuple]:
    return sorted(
        (r.code, r.recorded_at, r.recorded_by, r.resolved_at, r.resolved_by) for r in patient.contraindication_records
    )


def test_new_codes_are_recorded_with_who_assessed_them():
    patient = Patient(name="Ada")
    record_contraindications(patient, ["active_acne", "pregnancy"], "Dr Okafor", MONDAY)
    assert _history(patient) == [
        ("active_acne", MONDAY, "Dr Okafor", None, None),
        ("pregnancy", MONDAY, "Dr Okafor", None, None),
    ]


def test_a_code_no_longer_listed_is_resolved_and_one_still_listed_keeps_its_first_record():
    patient = Patient(name="Ada")
    record_contraindications(patient, ["active_acne", "pregnancy"], "Dr Okafor", MONDAY)
    record_contraindications(patient, ["pregnancy"], "Dr Ito", TUESDAY)
    assert _history(patient) == [
        ("active_acne", MONDAY, "Dr Okafor", TUESDAY, "Dr Ito"),
        ("pregnancy", MONDAY, "Dr Okafor", None, None),
    ]


def test_a_code_listed_again_after_it_was_resolved_is_a_new_record():
    patient = Patient(name="Ada")
    record_contraindications(patient, ["active_acne"], "Dr Okafor", MONDAY)
    record_contraindications(patient, [], None, TUESDAY)
    record_contraindications(patient, ["active_acne"], "Dr Ito", TUESDAY)
    assert _history(patient) == [
        ("active_acne", MONDAY, "Dr Okafor", TUESDAY, None),
        ("active_acne", TUESDAY, "Dr Ito", None, None),
    ]
