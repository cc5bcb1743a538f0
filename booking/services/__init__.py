"""The database services: each public function is one unit of work over a SQLAlchemy session.

They load what a rule needs (queries), call the pure rules in booking.domain, write, and let the
database's constraints have the last word. They neither commit nor open network connections: the
caller's unit of work commits, and outbound I/O lives in booking.integrations.
"""
