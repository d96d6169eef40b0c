"""Account rules: validation, creation and authentication. Used by the HTML views, the API and the CLI."""

from __future__ import annotations

import functools
import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from breakwater.accounts.models import Role, User
from breakwater.common.errors import ApiError

NAME_RE = re.compile(r"^[\w.\-]+$")
MIN_NAME, MIN_PASSWORD, MAX_PASSWORD = 3, 8, 128


@functools.cache
def _dummy_hash() -> str:
    """Compared against when the user does not exist, so both paths cost one hash check (made on first
    use: every process imports this module, few of them log anyone in)."""
    return generate_password_hash("breakwater-dummy-password")


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def validate_name(name: object, max_length: int = 64) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "invalid_name", "A user name is required.", field="name")
    name = name.strip()
    if len(name) < MIN_NAME or len(name) > max_length:
        raise ApiError(
            400, "invalid_name", f"The user name must be {MIN_NAME} to {max_length} characters long.", field="name"
        )
    if not NAME_RE.match(name):
        raise ApiError(
            400, "invalid_name", "The user name may contain only letters, digits, '.', '_' and '-'.", field="name"
        )
    return name


def validate_password(password: object) -> str:
    if not isinstance(password, str) or not password:
        raise ApiError(400, "invalid_password", "A password is required.", field="password")
    if len(password) < MIN_PASSWORD or len(password) > MAX_PASSWORD:
        raise ApiError(
            400,
            "invalid_password",
            f"The password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long.",
            field="password",
        )
    return password


def validate_email(email: object) -> str | None:
    """Optional: empty means none; otherwise one plausible address (the mail itself is the real check)."""
    if email is None or (isinstance(email, str) and not email.strip()):
        return None
    if not isinstance(email, str) or len(email.strip()) > 254 or not _EMAIL.fullmatch(email.strip()):
        raise ApiError(400, "invalid_email", "The e-mail address looks wrong (name@example.org).", field="email")
    return email.strip()


def create_user(
    session: Session,
    name: object,
    password: object,
    role: Role = Role.VISITOR,
    max_name: int = 64,
    email: object = None,
) -> User:
    """Insert a user; a taken name raises 409 (the unique index decides, so races are safe).

    With an address, a welcome mail goes out through the outbox: committed with the account, sent after."""
    clean_name = validate_name(name, max_name)
    clean_password = validate_password(password)
    clean_email = validate_email(email)
    user = User(name=clean_name, password_hash=generate_password_hash(clean_password), role=role, email=clean_email)
    session.add(user)
    try:
        if clean_email:
            from breakwater.queues import outbox

            session.flush()
            outbox.add(session, "breakwater.notify.welcome", kwargs={"user_id": user.id})
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ApiError(
            409, "name_taken", f"The user name {clean_name!r} is already taken; choose another.", field="name"
        ) from None
    return user


def authenticate(session: Session, name: object, password: object) -> User:
    if not isinstance(name, str) or not isinstance(password, str) or not name.strip() or not password:
        raise ApiError(400, "missing_credentials", "Both a user name and a password are required.")
    if len(name) > 256 or len(password) > MAX_PASSWORD:
        raise ApiError(401, "invalid_credentials", "The user name or password is wrong.")
    user = session.scalars(select(User).where(User.name == name.strip())).first()
    if user is None:
        check_password_hash(_dummy_hash(), password)
        raise ApiError(401, "invalid_credentials", "The user name or password is wrong.")
    if not check_password_hash(user.password_hash, password):
        raise ApiError(401, "invalid_credentials", "The user name or password is wrong.")
    return user


def get_user(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)
