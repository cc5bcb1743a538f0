"""SQLAlchemy models and session setup. Importing this package builds nothing."""

from .base import Base, new_id
from .booking import (
    APPOINTMENT_STATUSES,
    COURSE_PLAN_STATUSES,
    HOLD_SOURCES,
    HOLD_STATUSES,
    LIVE_STATUSES,
    Appointment,
    Claim,
    CoursePlan,
    Hold,
    PastSession,
)
from .calendars import FEED_OWNERS, CalendarFeed, ExternalBusy, ExternalCalendar
from .clinic import Clinic, Closure, OpeningHours, Room
from .db import make_engine, make_sessionmaker, writer
from .patient import BookingLink, Contraindication, Course, Patient
from .scheduling import (
    DELIVERY_STATUSES,
    FOLLOW_UP_STATUSES,
    WEBHOOK_STATUSES,
    FollowUp,
    IdempotencyKey,
    OutboxEvent,
    SchedulerLease,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from .staff import Practitioner, TimeOff, WorkingHours
from .tenancy import CHANNELS, KEY_KINDS, SCOPES, ApiKey, Organization
from .treatment import TreatmentType
from .waitlist import OPEN_WAITLIST_STATUSES, WAITLIST_OFFER_OUTCOMES, WAITLIST_STATUSES, WaitlistEntry, WaitlistOffer

__all__ = [
    "APPOINTMENT_STATUSES",
    "CHANNELS",
    "COURSE_PLAN_STATUSES",
    "DELIVERY_STATUSES",
    "FEED_OWNERS",
    "FOLLOW_UP_STATUSES",
    "HOLD_SOURCES",
    "HOLD_STATUSES",
    "KEY_KINDS",
    "LIVE_STATUSES",
    "OPEN_WAITLIST_STATUSES",
    "SCOPES",
    "WAITLIST_OFFER_OUTCOMES",
    "WAITLIST_STATUSES",
    "WEBHOOK_STATUSES",
    "ApiKey",
    "Appointment",
    "Base",
    "BookingLink",
    "CalendarFeed",
    "Claim",
    "Clinic",
    "Closure",
    "Contraindication",
    "Course",
    "CoursePlan",
    "ExternalBusy",
    "ExternalCalendar",
    "FollowUp",
    "Hold",
    "IdempotencyKey",
    "OpeningHours",
    "Organization",
    "OutboxEvent",
    "PastSession",
    "Patient",
    "Practitioner",
    "Room",
    "SchedulerLease",
    "TimeOff",
    "TreatmentType",
    "WaitlistEntry",
    "WaitlistOffer",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSubscription",
    "WorkingHours",
    "make_engine",
    "make_sessionmaker",
    "new_id",
    "writer",
]
