"""The documents name only what exists: README.md's map and docs/*.md cannot go stale.

Every dotted name under one of the packages (`booking.domain.rules.check_interval`) must import
and resolve, every repository path (`migrations/versions/0002_booking.py`, `booking/services/`)
must exist, every constraint or trigger named in backticks must be created by a migration, and
every other snake_case or CONFIG_NAME in backticks must occur somewhere in the code. When code
moves, this fails until the documents follow. No database: it reads files and imports modules.
"""

from __future__ import annotations

import importlib
import inspect
import re
from datetime import timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PACKAGES = ("api", "booking", "models", "schedulers")
TOP_LEVEL = (
    "api",
    "booking",
    "models",
    "schedulers",
    "migrations",
    "tests",
    "bench",
    "docs",
    "openapi",
    ".ci",
    "clients",
)
# Written by the commands the documents describe, never committed.
GENERATED = ("bench/out/", "instance/", "clients/generated/")
CODE = [
    path
    for top in ("api", "booking", "models", "schedulers", "migrations", "bench")
    for path in (ROOT / top).rglob("*.py")
] + [ROOT / name for name in ("wsgi.py", "gunicorn.conf.py", "Makefile", "pyproject.toml")]

DOTTED = re.compile(rf"(?<![\w./-])(?:{'|'.join(PACKAGES)})(?:\.[A-Za-z_]\w*)+")
PATH = re.compile(rf"(?<![\w./:-])(?:{'|'.join(re.escape(t) for t in TOP_LEVEL)})/[\w./-]*")
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
CONSTRAINT = re.compile(r"^(?:ex|uq|ck)_\w+$|^\w+_no_overlap$")
IDENTIFIER = re.compile(r"^(?:[a-z]\w*_\w+|[A-Z][A-Z0-9]*_[A-Z0-9_]+)$")


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _found(pattern: re.Pattern, documents=DOCUMENTS) -> list[tuple[str, str]]:
    return sorted({(doc.name, match.rstrip(".")) for doc in documents for match in pattern.findall(_text(doc))})


def _inline(documents=DOCUMENTS) -> list[tuple[str, str]]:
    return sorted({(doc.name, span) for doc in documents for span in INLINE.findall(_text(doc))})


def _resolves(dotted: str) -> bool:
    """The name imports, and a function or class is named at its home, not where it is imported."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module = ".".join(parts[:cut])
        try:
            found = importlib.import_module(module)
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        if cut < len(parts) and (inspect.isfunction(found) or inspect.isclass(found)):
            return found.__module__ == module
        return True
    return False


def test_the_documents_name_code():
    """A guard against a pattern that silently matches nothing."""
    rules = [ROOT / "docs" / "rules.md"]
    assert len(_found(DOTTED, rules)) > 40
    assert len(_found(PATH, rules)) >= 2


@pytest.mark.parametrize(("document", "name"), _found(DOTTED), ids=lambda value: value)
def test_every_dotted_name_resolves(document, name):
    assert _resolves(name), f"{document} names {name}: it does not import, or it lives in another module"


@pytest.mark.parametrize(("document", "path"), _found(PATH), ids=lambda value: value)
def test_every_path_exists(document, path):
    if path.startswith(GENERATED):
        return
    assert (ROOT / path).exists(), f"{document} names {path}, which is not in the repository"


MIGRATIONS = "\n".join(_text(path) for path in (ROOT / "migrations" / "versions").glob("*.py"))
SOURCE = "\n".join(_text(path) for path in CODE)


@pytest.mark.parametrize(
    ("document", "name"), [(d, s) for d, s in _inline() if CONSTRAINT.match(s)], ids=lambda value: value
)
def test_every_constraint_named_is_created_by_a_migration(document, name):
    assert re.search(rf"\b{name}\b", MIGRATIONS), f"{document} names {name}; no migration creates it"


@pytest.mark.parametrize(
    ("document", "name"),
    [(d, s) for d, s in _inline() if IDENTIFIER.match(s) and not CONSTRAINT.match(s)],
    ids=lambda value: value,
)
def test_every_identifier_named_occurs_in_the_code(document, name):
    assert re.search(rf"\b{name}\b", SOURCE), f"{document} names `{name}`, which the code never mentions"


def test_the_scheduler_job_list_names_every_registered_job():
    from schedulers import __doc__ as package_doc
    from schedulers.__main__ import build
    from schedulers.config import SchedulerSettings

    scheduler = build(SchedulerSettings("sqlite://", lease_ttl=timedelta(seconds=30)), "docs-test")
    registered = {job.id for job in scheduler.get_jobs()}
    assert len(registered) >= 5
    readme = _text(ROOT / "README.md")
    assert [job for job in sorted(registered) if f"`{job}`" not in readme] == []
    assert [job for job in sorted(registered) if job not in package_doc] == []
