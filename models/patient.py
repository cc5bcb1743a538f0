"""Patients, their recorded contraindications and their treatment courses."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking.domain import clock
from booking.domain.rules import Recorded

from .base import Base, Timestamped, new_id, org_fk


class Patient(Timestamped, Base):
    __tablename__ = "patients"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("pat"))
    organization_id: Mapped[str] = org_fk()
    name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str | None] = mapped_column(sa.String(320), nullable=True)
    phone: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    date_of_birth: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    # When the patient accepted the clinic's terms, registering through a booking page (0017).
    terms_accepted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # The BCP 47 tag of the language they read (0018): instructions and refusals follow it
    # (booking/i18n); none, or one without a catalog, reads as the request asks, else English.
    language: Mapped[str | None] = mapped_column(sa.String(35), nullable=True)

    contraindication_records: Mapped[list[Contraindication]] = relationship(
        cascade="all, delete-orphan", order_by="(Contraindication.recorded_at, Contraindication.id)"
    )

    @property
    def contraindications(self) -> list[str]:
        """The codes active today (UTC's date): unresolved, and permanent or before their `until`.

        The booking rules ask each record about the session's own local date instead
        (booking.domain.rules.check_contraindications)."""
        return sorted(r.code for r in self.current_contraindications(clock.now().date()))

    def current_contraindications(self, today: date) -> list[Contraindication]:
        """The records in force on `today`: unresolved, and permanent or before their `until`."""
        return [r for r in self.contraindication_records if r.active_on(today)]


class Contraindication(Base):
    """A contraindication as assessed: when and by whom, and when it was resolved.

    Resolving keeps the row, so the assessment history is never lost. A temporary one (an
    isotretinoin course, a pregnancy, a flare) has `until`: the first local date on which it no
    longer applies. It blocks sessions on dates before it and is history from it on, unresolved.
    """

    __tablename__ = "patient_contraindications"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[str] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    code: Mapped[str] = mapped_column(sa.String(64))
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    until: Mapped[date | None] = mapped_column(sa.Date, nullable=True)

    @property
    def recorded(self) -> Recorded:
        """What the booking rules ask about (booking.domain.rules.check_contraindications)."""
        return Recorded(self.code, self.until)

    def active_on(self, day: date) -> bool:
        """Whether it blocks a session on the local date `day`: unresolved, and active then by rule 2."""
        return self.resolved_at is None and self.recorded.active_on(day)


class Course(Timestamped, Base):
    __tablename__ = "courses"
    __table_args__ = (
        # One active course per patient and treatment type, so that a session booked without
        # `course_id` always counts on a cap (booking/services/courses.py); the database has the last word.
        sa.Index(
            "uq_courses_one_active",
            "patient_id",
            "treatment_type_id",
            unique=True,
            postgresql_where=sa.text("status = 'active'"),
            sqlite_where=sa.text("status = 'active'"),
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("crs"))
    organization_id: Mapped[str] = org_fk()
    patient_id: Mapped[str] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    treatment_type_id: Mapped[str] = mapped_column(sa.ForeignKey("treatment_types.id"))
    indication: Mapped[str] = mapped_column(sa.String(40))
    max_sessions: Mapped[int]
    max_sessions_per_365_days: Mapped[int | None] = mapped_column(nullable=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="active")
    notes: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    # Kept by the booking services as sessions complete or are recorded as past.
    sessions_completed: Mapped[int] = mapped_column(default=0)
    last_session_at: Mapped[datetime | None] = mapped_column(nullable=True)
    if TYPE_CHECKING:  # not a column: derived for the API's responses (booking.services.queries)
        next_earliest_start: datetime | None

    treatment_type = relationship("TreatmentType", lazy="joined")


class BookingLink(Timestamped, Base):
    """A personal booking link the clinic sends a patient (after their consultation, say): the
    booking page books as that patient with its token, every rule checked for them.

    The token is shown once and stored as its SHA-256 only (booking/services/tokens.py); the link
    ends when it expires or is revoked (`revoked_at`), and names one patient of one organization.
    """

    __tablename__ = "patient_booking_links"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("bkl"))
    organization_id: Mapped[str] = org_fk()
    patient_id: Mapped[str] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    token_digest: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # What the page preselects; the patient may still choose otherwise, every rule applying.
    treatment_type_id: Mapped[str | None] = mapped_column(sa.ForeignKey("treatment_types.id"), nullable=True)
    course_id: Mapped[str | None] = mapped_column(sa.ForeignKey("courses.id"), nullable=True)
    created_by_key_id: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)

    if TYPE_CHECKING:  # not columns: set on a new link for the one response that shows them
        token: str
        secret: str
        url: str | None

    patient: Mapped[Patient] = relationship(lazy="joined")

    def live(self, at: datetime) -> bool:
        return self.revoked_at is None and at < self.expires_at
