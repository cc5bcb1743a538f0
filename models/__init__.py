"""SQLAlchemy models and session setup. Importing this package builds nothing."""
from .base import Base, new_id, utcnow
from .booking import APPOINTMENT_STATUSES, HOLD_SOURCES, LIVE_STATUSES, Appointment, Claim, Hold, PastSession
from .calendars import FEED_OWNERS, CalendarFeed, ExternalBusy, ExternalCalendar
from .clinic import Clinic, Closure, OpeningHours, Room
from .db import make_engine, make_sessionmaker, writer
from .scheduling import (
    DELIVERY_STATUSES, FOLLOW_UP_STATUSES, WEBHOOK_STATUSES, FollowUp, IdempotencyKey, OutboxEvent, SchedulerLease,
    WebhookAttempt, WebhookDelivery, WebhookSubscription,
)
from .patient import Contraindication, Course, Patient
from .staff import Practitioner, TimeOff, WorkingHours
from .tenancy import SCOPES, ApiKey, Organization
from .treatment import TreatmentType

__all__ = [
    "FEED_OWNERS", "CalendarFeed", "ExternalBusy", "ExternalCalendar",
    "APPOINTMENT_STATUSES", "HOLD_SOURCES", "LIVE_STATUSES", "Appointment", "Claim", "Hold",
    "DELIVERY_STATUSES", "FOLLOW_UP_STATUSES", "WEBHOOK_STATUSES", "FollowUp", "IdempotencyKey", "OutboxEvent",
    "SchedulerLease", "WebhookAttempt", "WebhookDelivery", "WebhookSubscription", "PastSession", "SCOPES", "ApiKey", "Base", "Clinic", "Closure", "Contraindication", "Course",
    "OpeningHours", "Organization", "Patient", "Practitioner", "Room", "TimeOff",
    "TreatmentType", "WorkingHours", "make_engine", "make_sessionmaker", "new_id",
    "utcnow", "writer",
]
