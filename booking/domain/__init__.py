"""The pure rules: plain functions and dataclasses over plain data.

No SQLAlchemy session, no network, no Flask: everything here is tested without a database.
Clinical rules (rules, timing, treatments, courses), the week and interval algebra (weekly,
intervals), the availability engine (availability), the vocabulary, the clock and the domain
errors every other layer raises.
"""
