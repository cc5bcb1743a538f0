"""The scheduling domain, in layers (imports point down this list; tests/domain/test_architecture.py pins it):

- booking.domain: pure rules, the availability engine, errors (no session, no I/O);
- booking.i18n: what a patient reads in their language (Babel's gettext catalogs and formats);
- booking.services: database units of work (book, hold, reschedule, search, sweeps ...);
- booking.formats: iCalendar and FHIR rendering;
- booking.integrations: outbound network I/O (webhooks, external calendars).

Nothing here imports Flask or reads a request.
"""
