"""What a patient reads, in their language: gettext catalogs (Babel) and Babel's formats.

The catalogs are `booking/i18n/translations/<language>/LC_MESSAGES/messages.po`, compiled to `.mo`
by `make install` (pybabel compile). Message ids are the English text; a language without a
catalog, or a message its catalog lacks, reads in English. Codes (`code` fields) never change:
only the words around them do. No Flask here: the API picks the language (Flask-Babel's locale
selector, api/i18n.py), the scheduler reads it from the patient.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time, format_timedelta
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
DOMAIN = "messages"
DEFAULT = "en"
SUPPORTED = ("en", "ar")  # a catalog each (English is the message ids themselves)


def N_(message: str) -> str:
    """Mark a message for extraction (pybabel's `-k N_`) where it is translated later."""
    return message


def parse_tag(tag: str) -> Locale:
    """A BCP 47 language tag (`ar`, `ar-EG`, `zh-Hant-TW`) as Babel reads it; ValueError if not one."""
    try:
        return Locale.parse(tag.replace("_", "-"), sep="-")
    except (UnknownLocaleError, ValueError, TypeError) as error:
        raise ValueError(str(error)) from None


def supported(tag: str | None) -> str | None:
    """The supported language a tag asks for (`ar-EG` -> `ar`), or None."""
    if not tag:
        return None
    try:
        language = parse_tag(tag).language
    except ValueError:
        return None
    return language if language in SUPPORTED else None


@cache
def catalog(language: str) -> NullTranslations:
    if language == DEFAULT:
        return NullTranslations()
    return Translations.load(str(TRANSLATIONS), [language], DOMAIN)


@dataclass(frozen=True)
class Text:
    """The words and formats of one supported language."""

    language: str = DEFAULT

    @classmethod
    def of(cls, *tags: str | None) -> Text:
        """The first tag that names a supported language, else English."""
        return cls(next((lang for lang in map(supported, tags) if lang), DEFAULT))

    @property
    def locale(self) -> Locale:
        return Locale.parse(self.language)

    @property
    def direction(self) -> str:
        """`ltr` or `rtl` (Arabic), as a page's `dir` attribute takes it."""
        return self.locale.text_direction

    def gettext(self, message: str, **values: object) -> str:
        text = catalog(self.language).gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: object) -> str:
        text = catalog(self.language).ngettext(singular, plural, n)
        return text % {"num": self.number(n), **values}

    def all(self, messages: Iterable[str]) -> list[str]:
        return [self.gettext(message) for message in messages]

    def number(self, value: int) -> str:
        return format_decimal(value, locale=self.locale)

    def when(self, instant: datetime) -> str:
        """An aware instant as a person reads it, on the clock of its own zone (the clinic's)."""
        zone = instant.tzinfo
        pattern = self.locale.datetime_formats["long"]
        return pattern.format(
            format_time(instant, "short", tzinfo=zone, locale=self.locale),
            format_date(instant, "full", locale=self.locale),
        ).replace("'", "")

    def day(self, value: date) -> str:
        return format_date(value, "full", locale=self.locale)

    def duration(self, value: timedelta) -> str:
        return format_timedelta(value, threshold=2, locale=self.locale)
