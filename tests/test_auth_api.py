"""JSON accounts API: the happy path, and every rejection leaves the users table unchanged."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text


def user_count(db) -> int:
    from breakwater.accounts.models import User

    with db.primary_engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(User)).scalar_one()


def post(http, origin, path, payload=None, **kwargs):
    return http.post(f"{origin}/api/auth/{path}", json=payload, timeout=10, **kwargs)


def assert_error(resp, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    error = resp.json()["error"]
    assert error["code"] == code
    assert error["message"] and error["message"].endswith(".")


def test_register_me_logout_login(http, origin, unique_name, db):
    before = user_count(db)
    resp = post(http, origin, "register", {"name": unique_name, "password": "correct horse"})
    assert resp.status_code == 201
    assert resp.json()["user"] == {"id": resp.json()["user"]["id"], "name": unique_name, "role": "visitor"}
    assert user_count(db) == before + 1

    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie

    assert http.get(f"{origin}/api/auth/me", timeout=5).json()["user"]["name"] == unique_name
    assert post(http, origin, "logout").status_code == 200
    assert_error(http.get(f"{origin}/api/auth/me", timeout=5), 401, "not_authenticated")

    resp = post(http, origin, "login", {"name": unique_name, "password": "correct horse"})
    assert resp.status_code == 200 and resp.json()["user"]["name"] == unique_name
    assert http.get(f"{origin}/api/auth/me", timeout=5).status_code == 200


def test_password_is_stored_hashed(http, origin, unique_name, db):
    post(http, origin, "register", {"name": unique_name, "password": "plain-text-secret"})
    with db.primary_engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM users WHERE name = :n"), {"n": unique_name}).scalar_one()
    assert "plain-text-secret" not in stored
    assert stored.startswith(("scrypt:", "pbkdf2:"))


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({}, "invalid_name"),
        ({"name": "", "password": "long enough"}, "invalid_name"),
        ({"name": "   ", "password": "long enough"}, "invalid_name"),
        ({"name": "ab", "password": "long enough"}, "invalid_name"),
        ({"name": "x" * 65, "password": "long enough"}, "invalid_name"),
        ({"name": "<script>", "password": "long enough"}, "invalid_name"),
        ({"name": 12345, "password": "long enough"}, "invalid_name"),
        ({"name": "validname1", "password": ""}, "invalid_password"),
        ({"name": "validname2", "password": "short"}, "invalid_password"),
        ({"name": "validname3", "password": "p" * 129}, "invalid_password"),
        ({"name": "validname4", "password": ["not", "a", "string"]}, "invalid_password"),
    ],
)
def test_register_rejects_bad_input_and_creates_nothing(http, origin, db, payload, code):
    before = user_count(db)
    assert_error(post(http, origin, "register", payload), 400, code)
    assert user_count(db) == before


def test_register_duplicate_name_is_409_and_creates_nothing(http, origin, db, unique_name):
    assert post(http, origin, "register", {"name": unique_name, "password": "first password"}).status_code == 201
    before = user_count(db)
    assert_error(post(http, origin, "register", {"name": unique_name, "password": "other password"}), 409, "name_taken")
    assert user_count(db) == before


def test_register_requires_json(http, origin, db):
    before = user_count(db)
    resp = http.post(f"{origin}/api/auth/register", data={"name": "formuser", "password": "long enough"}, timeout=5)
    assert_error(resp, 415, "unsupported_media_type")
    resp = http.post(
        f"{origin}/api/auth/register",
        data="{not json",
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert_error(resp, 400, "invalid_json")
    resp = post(http, origin, "register", ["a", "list"])
    assert_error(resp, 400, "invalid_json")
    assert user_count(db) == before


def test_login_rejections(http, origin, unique_name):
    post(http, origin, "register", {"name": unique_name, "password": "right password"})
    post(http, origin, "logout")
    assert_error(
        post(http, origin, "login", {"name": unique_name, "password": "wrong password"}), 401, "invalid_credentials"
    )
    assert_error(
        post(http, origin, "login", {"name": "nobody-" + unique_name, "password": "whatever1"}),
        401,
        "invalid_credentials",
    )
    assert_error(post(http, origin, "login", {"name": unique_name}), 400, "missing_credentials")
    assert_error(post(http, origin, "login", {"name": "", "password": ""}), 400, "missing_credentials")
    assert_error(post(http, origin, "login", {"name": unique_name, "password": "x" * 500}), 401, "invalid_credentials")
    assert_error(http.get(f"{origin}/api/auth/me", timeout=5), 401, "not_authenticated")


def test_wrong_method_is_json_405(http, origin):
    assert_error(http.get(f"{origin}/api/auth/login", timeout=5), 405, "method_not_allowed")


def test_oversized_body_is_413(http, origin, db):
    before = user_count(db)
    resp = post(http, origin, "register", {"name": "bigbody", "password": "long enough", "pad": "x" * 1_100_000})
    assert resp.status_code == 413
    assert user_count(db) == before


def test_failed_logins_are_rate_limited_per_address_and_account(http, origin, settings, unique_name):
    """The app's limit on failed logins per address and account (LOGIN_FAIL_RATE), asked of gunicorn directly
    from one visitor's address: through the origin, Nginx's own limit on login POSTs per address (10 a minute,
    burst 5) would answer these 14 attempts before the app does. gunicorn takes a peer that is not its front
    server at its own address, whatever it claims."""
    app = settings.app_url
    post(http, origin, "register", {"name": unique_name, "password": "right password"})
    post(http, origin, "logout")
    for _ in range(5):
        assert_error(post(http, app, "login", {"name": unique_name, "password": "wrong!"}), 401, "invalid_credentials")
    limited = post(http, app, "login", {"name": unique_name, "password": "right password"})
    assert_error(limited, 429, "rate_limited")
    assert "Retry-After" in limited.headers
    # Successful logins do not count, and other accounts from the same address are not locked out.
    other = "o" + unique_name[1:]
    post(http, origin, "register", {"name": other, "password": "right password"})
    for _ in range(7):
        assert post(http, app, "login", {"name": other, "password": "right password"}).status_code == 200
    # A client cannot escape by claiming another address, neither at gunicorn nor through the origin (which
    # believes X-Forwarded-For only from the edge): the same visitor is refused by the app's limit, not
    # Nginx's (this is its first login POST through the origin).
    for base in (app, origin):
        spoofed = post(http, base, "login", {"name": unique_name, "password": "right password"},
                       headers={"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"})  # fmt: skip
        assert_error(spoofed, 429, "rate_limited")
        assert spoofed.json()["error"]["message"].startswith("Too many attempts"), (base, spoofed.text)
