"""Celery entry point: ``celery -A breakwater.worker worker``."""

from breakwater.app import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]
