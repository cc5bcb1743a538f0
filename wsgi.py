"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`. Only builds the app."""

from api import create_app

app = create_app()
