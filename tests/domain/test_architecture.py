"""The layers and the imports allowed between them.

Read statically (every import statement, also those inside functions), so a lazy import cannot
hide a dependency that points the wrong way. The layers, from the bottom:

    booking.domain        pure rules: the standard library and each other only
    booking.i18n          what a patient reads in their language: Babel's catalogs and formats only
    models                SQLAlchemy models: nothing of booking, api or schedulers
    booking.services      units of work: domain and models
    booking.formats       iCalendar and FHIR rendering: domain, models, services
    booking.integrations  outbound network I/O: domain, models, services
    schedulers            the scheduler process: booking and models, never api
    api                   HTTP: everything but schedulers
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLASK = ("flask", "werkzeug", "flask_smorest", "flask_cors", "flask_limiter", "marshmallow")
NETWORK = ("socket", "ssl", "http", "urllib", "urllib3", "requests")

# layer -> imported names it may not use (a name forbids itself and everything under it)
FORBIDDEN = {
    "booking.domain": (
        "booking.services",
        "booking.formats",
        "booking.integrations",
        "models",
        "sqlalchemy",
        "api",
        "schedulers",
        "icalendar",
        "recurring_ical_events",
        "booking.i18n",
        "babel",
        *FLASK,
        *NETWORK,
    ),
    "booking.i18n": (
        "booking.domain",
        "booking.services",
        "booking.formats",
        "booking.integrations",
        "models",
        "sqlalchemy",
        "api",
        "schedulers",
        *FLASK,
        *NETWORK,
    ),
    "models": ("booking.services", "booking.formats", "booking.integrations", "api", "schedulers", *FLASK, *NETWORK),
    "booking.services": ("booking.formats", "booking.integrations", "api", "schedulers", *FLASK, *NETWORK),
    "booking.formats": ("booking.integrations", "api", "schedulers", *FLASK, *NETWORK),
    "booking.integrations": ("booking.formats", "api", "schedulers", *FLASK),
    "schedulers": ("api", *FLASK),
    "api": ("schedulers",),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> set[str]:
    """Every module an import statement of the file names, relative ones resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from booking import services`
    return names


def _layer(module: str) -> str | None:
    return next(
        (
            layer
            for layer in sorted(FORBIDDEN, key=len, reverse=True)
            if module == layer or module.startswith(layer + ".")
        ),
        None,
    )


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


# booking/__init__.py holds only the package's docstring (the map of these layers).
SOURCES = sorted(
    path
    for top in ("booking", "models", "schedulers", "api")
    for path in (ROOT / top).rglob("*.py")
    if path != ROOT / "booking" / "__init__.py"
)


def test_every_module_belongs_to_a_layer():
    assert len(SOURCES) > 60
    assert [path for path in SOURCES if _layer(_module_name(path)) is None] == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: _module_name(path))
def test_imports_point_down_the_layers(path):
    module = _module_name(path)
    layer = _layer(module)
    wrong = sorted(name for name in _imports(path, module) for forbidden in FORBIDDEN[layer] if _under(name, forbidden))
    assert wrong == [], f"{module} ({layer}) imports {wrong}"


def test_the_checker_sees_a_lazy_relative_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from ..services import appointments\n    import sqlalchemy.orm\n")
    assert {"booking.services", "booking.services.appointments", "sqlalchemy.orm"} <= _imports(
        sample, "booking.domain.sample"
    )
    assert _layer("booking.domain.sample") == "booking.domain"


def test_importing_every_booking_module_loads_no_flask():
    code = (
        "import importlib, pkgutil, sys, booking\n"
        "names = [m.name for m in pkgutil.walk_packages(booking.__path__, 'booking.')]\n"
        "assert {'booking.domain.rules', 'booking.services.appointments', 'booking.formats.fhir',\n"
        "        'booking.integrations.webhooks'} <= set(names), names\n"
        "for name in names: importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FLASK!r} + ('api',)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
