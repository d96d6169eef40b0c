"""gunicorn entry point: ``gunicorn breakwater.wsgi:app``."""

from breakwater.app import create_app

app = create_app()
