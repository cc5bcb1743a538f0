"""Phone numbers as people write them, stored as E.164, by libphonenumber's rules (`phonenumbers`).

A number written with `+<country code>` reads the same anywhere; one without it is national
and means something only in a country (`020 7946 0000` is London in Britain and nothing in
the United States), so it is read in `region`, or refused when there is none to read it in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import phonenumbers

from booking.domain.errors import InvalidInput

# What a person or a form writes: ASCII digits, one leading +, spaces and the usual separators.
# Anything else (a newline, letters, other scripts' digits) is refused rather than guessed at.
TYPED = re.compile(r" *\+?[0-9 ()./-]+")
NEEDS_COUNTRY_CODE = (
    "A number without +<country code> can only be read in one country, and this organization's clinics are not "
    "all in one country it knows: write it with +<country code>, e.g. +44 20 7946 0000."
)


def needs_region(text: str) -> bool:
    return not text.lstrip().startswith("+")


def to_e164(text: str, region: str | None) -> str:
    """`text` as E.164 (`+442079460000`), national numbers read in `region` (ISO 3166, `GB`)."""
    if not TYPED.fullmatch(text):
        raise InvalidInput({"phone": ["Write the number with digits, spaces, ( ) - . / and a leading + only."]})
    if needs_region(text) and region is None:
        raise InvalidInput({"phone": [NEEDS_COUNTRY_CODE]})
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput({"phone": [f"Not a phone number: {exc._msg}"]}) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput({"phone": ["Not a valid phone number (checked with the numbering plan of its country)."]})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def one_country(zones: Iterable[str], country_of_zone: Mapping[str, str]) -> str | None:
    """The country all these IANA zones lie in; None when they lie in several, or one is not known."""
    countries = {country_of_zone.get(zone) for zone in zones}
    return countries.pop() if len(countries) == 1 and None not in countries else None
