"""Outbound network I/O: webhook delivery, external calendars (fetch and expansion), and the
guarded HTTP client (net) both use. Untrusted content is handled here, under explicit bounds and
never inside a transaction.
"""
