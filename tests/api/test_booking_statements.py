"""What one booking costs the database: the statements of POST /v1/appointments, pinned.

Throughput is bounded by round trips (bench/booking.py): a change that adds a read to every
booking must show up here and be decided on, not slip in. Counted with an event listener on
the engine, the test harness's own savepoint around the request (BEGIN/COMMIT in production)
left out.
"""

from __future__ import annotations

from sqlalchemy import event

from ..booking_world import patient

# Auth's key; the type, the clinic (FOR KEY SHARE OF clinics), the practitioner with their
# qualifications and the room in one read; the patient (FOR UPDATE) with contraindications; the
# organization's booking policy; the courses, the history, time off, weekly hours, closures, the
# claims in the way, then INSERTs of the appointment, its claims (one statement) and its event.
# SQLite wraps the claims' INSERT in a savepoint (its trigger aborts the statement); PostgreSQL
# needs none (ON CONFLICT DO NOTHING).
STATEMENTS = {"postgresql": 13, "sqlite": 15}


def test_one_booking_makes_a_fixed_number_of_statements(world, engine, backend):
    world.consulted()
    world.book(starts_at=world.at(day=1))  # warm: the first request of an app may read more once
    other = patient(world)
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(" ".join(statement.split())[:120])

    event.listen(engine, "before_cursor_execute", count)
    try:
        booked = world.book(starts_at=world.at(day=3), patient_id=other["id"])
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert booked["status"] == "booked"
    assert statements[0].startswith("SAVEPOINT") and statements[-1].startswith("RELEASE SAVEPOINT")
    own = statements[1:-1]
    assert len(own) == STATEMENTS[backend[0]], "\n".join(own)
    assert sum(s.startswith("INSERT INTO claims") for s in own) == 1  # every claim in one INSERT
