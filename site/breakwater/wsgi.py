"""gunicorn entry point: ``gunicorn breakwater.wsgi:app``."""

from breakwater import create_app

app = create_app()
