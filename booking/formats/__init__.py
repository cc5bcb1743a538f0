"""Wire formats rendered from the models: the iCalendar feeds (ical_feed) and FHIR R4 resources (fhir)."""
