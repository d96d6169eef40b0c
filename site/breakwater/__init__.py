"""Breakwater: a Flask + Nginx content site that stays fast and correct under traffic spikes.

The application factory is :func:`breakwater.app.create_app`; ``breakwater.wsgi`` (gunicorn) and
``breakwater.worker`` (Celery) are the entry points, ``breakwater.cli`` the ``breakwater`` command.
Layers, top to bottom (``make lint`` keeps them, see ``[tool.importlinter]`` in pyproject.toml): the entry
points and CLI, the feature packages (web modules over their services over their models), the infrastructure
(database, cache, queues, edge, observability) and at the bottom ``settings`` and ``common``.
"""
