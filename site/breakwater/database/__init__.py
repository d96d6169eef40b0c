"""Database access: the declarative base, engines per node, sessions, migrations and seed data."""

from breakwater.database.base import Base
from breakwater.database.engine import Database, PrimaryUnavailable

__all__ = ["Base", "Database", "PrimaryUnavailable"]
