"""Secrets the service must be able to read back (a webhook's signing secret), sealed at rest.

API keys and feed tokens are stored as digests; a signing secret cannot be, since every delivery
is signed with it. It is stored encrypted with Fernet (the `cryptography` package: AES-128-CBC
with HMAC-SHA256), so a copy of the database (a dump, a backup, a replica) does not hold it in
clear. The key is `SECRETS_KEY` (a Fernet key: `python -c "from cryptography.fernet import Fernet;
print(Fernet.generate_key().decode())"`) or, when unset, `instance/secrets-key`, made on first use
and shared by the web workers and the scheduler that run from this checkout.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken

from .db import PROJECT_ROOT

PREFIX = "fernet:"
KEY_FILE = PROJECT_ROOT / "instance" / "secrets-key"


@functools.cache
def _fernet(key: str | None = None) -> Fernet:
    return Fernet((key or os.environ.get("SECRETS_KEY") or _key_file(KEY_FILE)).encode())


def _key_file(path: Path) -> str:
    """The key in `path`, made (atomically, readable by the owner only) if there is none yet."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, draft = tempfile.mkstemp(dir=path.parent, prefix=".secrets-key-")
    try:
        os.write(descriptor, Fernet.generate_key())
        os.close(descriptor)
        with contextlib.suppress(FileExistsError):  # another process made it first: theirs is the key
            os.link(draft, path)
    finally:
        os.unlink(draft)
    return path.read_text().strip()


def seal(secret: str) -> str:
    return PREFIX + _fernet().encrypt(secret.encode()).decode()


def unseal(stored: str) -> str:
    if not stored.startswith(PREFIX):
        raise ValueError("not a sealed secret")
    try:
        return _fernet().decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise ValueError("a sealed secret that this SECRETS_KEY cannot open") from None


class Sealed(sa.types.TypeDecorator[str]):
    """A string column whose value is sealed on the way in and opened on the way out."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> str | None:
        return None if value is None else seal(value)

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> str | None:
        return None if value is None else unseal(value)
