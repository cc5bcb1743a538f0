"""Opaque page cursors: the last key of a page, base64url without padding.

Opaque so that clients follow them rather than build them; each caller checks that the
key it gets back is one it could have issued.
"""

from __future__ import annotations

import base64
import binascii


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str | None:
    """The key a cursor from encode_cursor() holds; None for anything that is not one."""
    try:
        key = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return key if key and key.isprintable() else None
