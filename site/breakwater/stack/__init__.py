"""The local stack: MariaDB primary + replicas, Redis, gunicorn, Celery and Nginx under supervisord.

``make run``, ``make up`` and the test fixtures all go through :mod:`breakwater.stack.lifecycle`.
"""

from breakwater.stack.errors import StackError
from breakwater.stack.lifecycle import Stack

__all__ = ["Stack", "StackError"]
