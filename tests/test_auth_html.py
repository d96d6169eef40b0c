"""HTML register/login forms: CSRF tokens required, session cookie flags, escaped output."""

from __future__ import annotations

import re

from sqlalchemy import text


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "form has no CSRF token"
    return match.group(1)


def count(db, name: str) -> int:
    with db.primary_engine.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM users WHERE name = :n"), {"n": name}).scalar_one()


def test_register_form_without_csrf_token_is_rejected(http, origin, db, unique_name):
    http.get(f"{origin}/register", timeout=5)
    resp = http.post(f"{origin}/register", data={"name": unique_name, "password": "long enough"}, timeout=5)
    assert resp.status_code == 400
    assert "CSRF" in resp.text
    assert count(db, unique_name) == 0


def test_register_and_login_with_forms(http, origin, db, unique_name):
    page = http.get(f"{origin}/register", timeout=5)
    token = csrf_token(page.text)
    resp = http.post(
        f"{origin}/register",
        data={"name": unique_name, "password": "long enough", "csrf_token": token},
        allow_redirects=False,
        timeout=5,
    )
    assert resp.status_code == 302
    assert count(db, unique_name) == 1
    # Pages are the same for everyone (static on the CDN); who is signed in comes from the API.
    home = http.get(f"{origin}/", timeout=5)
    assert unique_name not in home.text and "登录" in home.text
    me = http.get(f"{origin}/api/auth/me", timeout=5)
    assert me.status_code == 200 and me.json()["user"]["name"] == unique_name
    assert "no-store" in me.headers["Cache-Control"]

    token = me.json()["csrf_token"]
    logout = http.post(f"{origin}/logout", data={"csrf_token": token}, allow_redirects=False, timeout=5)
    assert logout.status_code == 302
    assert http.get(f"{origin}/api/auth/me", timeout=5).status_code == 401

    login_page = http.get(f"{origin}/login", timeout=5)
    bad = http.post(
        f"{origin}/login",
        data={"name": unique_name, "password": "wrong password", "csrf_token": csrf_token(login_page.text)},
        timeout=5,
    )
    assert bad.status_code == 401 and "wrong" in bad.text
    good = http.post(
        f"{origin}/login?next=//evil.example/",
        data={"name": unique_name, "password": "long enough", "csrf_token": csrf_token(bad.text)},
        allow_redirects=False,
        timeout=5,
    )
    assert good.status_code == 302
    assert good.headers["Location"] == "/"  # no open redirect
    for target in ("/\\evil.example/", "/%0d%0aSet-Cookie:x=1", "https://evil.example/"):
        token = http.get(f"{origin}/api/auth/me", timeout=5).json()["csrf_token"]
        http.post(f"{origin}/logout", data={"csrf_token": token})
        page = http.get(f"{origin}/login", timeout=5)
        again = http.post(
            f"{origin}/login", params={"next": target}, allow_redirects=False, timeout=5,
            data={"name": unique_name, "password": "long enough", "csrf_token": csrf_token(page.text)},
        )  # fmt: skip
        assert again.status_code == 302 and again.headers["Location"] in ("/", "/%0d%0aSet-Cookie:x=1"), target


def test_form_errors_escape_user_input(http, origin):
    page = http.get(f"{origin}/register", timeout=5)
    resp = http.post(
        f"{origin}/register",
        data={"name": '"><script>alert(1)</script>', "password": "long enough", "csrf_token": csrf_token(page.text)},
        timeout=5,
    )
    assert resp.status_code == 400
    assert "<script>alert(1)</script>" not in resp.text
    assert "&lt;script&gt;" in resp.text
