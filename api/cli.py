"""Command-line tasks: `flask --app wsgi <command>`."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import make_url

from booking.domain.errors import InvalidInput
from booking.services import demo_seed, unit_of_work
from booking.services.tenancy import create_organization
from models.db import default_database_url

from . import pages as booking_pages


def _transaction():
    return unit_of_work.transaction(current_app.extensions["db_write_sessions"])


@click.command("create-organization")
@with_appcontext
@click.argument("name")
def create_organization_command(name: str) -> None:
    """Create an organization; its admin API key is the last line printed."""
    with _transaction() as session:
        try:
            organization, token = create_organization(session, name)
        except InvalidInput as exc:
            raise click.BadParameter(str(exc.errors["name"][0]), param_hint="NAME") from exc
    click.echo(f"Created organization {organization.id} ({organization.name}).")
    click.echo("Its admin API key (shown once, stored only hashed):")
    click.echo(token)


@click.command("migrate")
@with_appcontext
def migrate_command() -> None:
    """Bring the database schema up to date (Alembic upgrade head)."""
    from migrations import upgrade

    logging.getLogger("alembic").setLevel(logging.WARNING)
    upgrade(current_app.config["DATABASE_URL"])
    click.echo("Database is at the latest migration.")


def instance_file(instance: Path, database_url: str, name: str) -> Path:
    """A file of the instance folder kept per database: `name` for the embedded default database,
    `name-<digest of the url>` for any other, so seeding one database never overwrites what another
    one's server reads."""
    if database_url == default_database_url():
        return instance / name
    safe = make_url(database_url).render_as_string(hide_password=True)
    stem, dot, suffix = name.partition(".")
    return instance / f"{stem}-{hashlib.sha256(safe.encode()).hexdigest()[:8]}{dot}{suffix}"


def demo_key_file(instance: Path, database_url: str) -> Path:
    """Where the demo's admin key is kept for this database (`demo-api-key` for the embedded default)."""
    return instance_file(instance, database_url, "demo-api-key")


@click.command("seed-demo")
@with_appcontext
def seed_demo_command() -> None:
    """Seed the demo organization into an empty database; print its admin key."""
    key_file = demo_key_file(Path(current_app.instance_path), current_app.config["DATABASE_URL"])
    saved = key_file.read_text().strip() if key_file.exists() else None
    pages_file = booking_pages.pages_file()
    pages = _read_json(pages_file)
    port = current_app.config["PORT"]
    origins = [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]
    link_file = instance_file(Path(current_app.instance_path), current_app.config["DATABASE_URL"], "demo-booking-link")
    saved_link = link_file.read_text().strip() if link_file.exists() else None
    with _transaction() as session:
        token = demo_seed.ensure_demo(session, saved)
        booking_key = demo_seed.ensure_booking_key(session, pages.get("demo"), origins) if token else None
        link = demo_seed.ensure_booking_link(session, saved_link) if token else None
    if token is None:
        click.echo("The database holds other organizations and no demo; nothing seeded.")
        return
    key_file.parent.mkdir(parents=True, exist_ok=True)
    if booking_key is not None:
        # A publishable key is public (it ships in the page): the file may hold it in the clear.
        pages_file.parent.mkdir(parents=True, exist_ok=True)
        pages_file.write_text(json.dumps({**pages, "demo": booking_key}, indent=2) + "\n")
        click.echo(f"Booking page: http://127.0.0.1:{port}/book/demo (its publishable key is in {pages_file})")
    if link is not None:
        # Stored only as its digest in the database: the demo keeps the token beside the key.
        link_file.write_text(link + "\n")
        link_file.chmod(0o600)
        click.echo(
            f"Grace Whitfield's booking link (her consultation is done; kept in {link_file}):\n"
            f"  http://127.0.0.1:{port}/book/demo#invite={link}"
        )
    key_file.write_text(token + "\n")
    key_file.chmod(0o600)
    click.echo(f"Demo organization ready. Admin API key (kept in {key_file}): {token}")


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def init_app(app) -> None:
    for command in (create_organization_command, migrate_command, seed_demo_command):
        app.cli.add_command(command)
