"""The local stack: MariaDB primary + replicas, Redis, gunicorn, Celery and Nginx under supervisord.

``make run``, ``make up`` and the test fixtures all go through :mod:`breakwater_tools.stack.lifecycle`.
"""

from breakwater_tools.stack.errors import StackError
from breakwater_tools.stack.lifecycle import Stack

__all__ = ["Stack", "StackError"]
