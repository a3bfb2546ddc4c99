"""WSGI entry point: ``gunicorn wsgi:app`` and ``flask --app wsgi``."""

from vrm_portal import create_app

app = create_app()
