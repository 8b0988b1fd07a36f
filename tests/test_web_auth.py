"""Login, logout, session expiry, throttling, CSRF and security headers of the web app."""

from test_web_fixtures import *  # noqa: F403
from test_web_fixtures import PASSWORD, csrf_of, login, start


def test_login_page_is_german_and_has_a_csrf_token(client):
    html = client.get("/login").get_data(as_text=True)
    assert '<html lang="de">' in html and "Benutzername" in html and "Passwort" in html
    assert 'name="username"' in html and 'name="password"' in html and csrf_of(html)


def test_login_without_or_with_a_wrong_csrf_token_is_refused(client, users):
    resp = client.post("/login", data={"username": "anna", "password": PASSWORD})
    assert resp.status_code == 400
    resp = client.post("/login", data={"username": "anna", "password": PASSWORD, "csrf_token": "forged"})
    assert resp.status_code == 400
    assert client.get("/posteingang").status_code == 302  # still not logged in


def test_login_lands_on_the_inbox_and_logout_ends_the_session(client, users):
    resp = login(client, "anna")
    assert resp.status_code == 302 and resp.headers["Location"] == "/posteingang"
    page = client.get("/posteingang")
    assert page.status_code == 200 and "Posteingang" in page.get_data(as_text=True)
    cookie = client.get_cookie("ozgflow_session").value
    resp = client.post("/logout", data={"csrf_token": csrf_of(page.get_data(as_text=True))})
    assert resp.status_code == 302
    assert client.get("/posteingang").status_code == 302
    client.set_cookie("ozgflow_session", cookie)  # replaying the old cookie does not bring the session back
    assert client.get("/posteingang").headers["Location"].startswith("/login")


def test_logout_needs_a_csrf_token(client, users):
    login(client, "anna")
    assert client.post("/logout").status_code == 400
    assert client.get("/posteingang").status_code == 200


def test_wrong_password_is_refused_then_the_account_locks(client, users, clock):
    resp = login(client, "anna", "falsch")
    assert resp.status_code == 401 and "Benutzername oder Passwort ist falsch" in resp.get_data(as_text=True)
    for _ in range(4):
        login(client, "anna", "falsch")
        clock.advance(seconds=30)
    resp = login(client, "anna")
    assert resp.status_code == 401 and "gesperrt" in resp.get_data(as_text=True)
    clock.advance(minutes=20)
    assert login(client, "anna").status_code == 302


def test_sessions_expire_when_idle(client, users, clock):
    login(client, "anna")
    clock.advance(minutes=30)
    assert client.get("/posteingang").status_code == 200
    clock.advance(minutes=61)
    resp = client.get("/posteingang")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")


def test_next_goes_back_only_to_this_site(client, users):
    token = csrf_of(client.get("/login").get_data(as_text=True))
    form = {"username": "anna", "password": PASSWORD, "csrf_token": token}
    assert client.post("/login?next=/vorgaenge/1", data=form).headers["Location"] == "/vorgaenge/1"
    client.post("/logout", data={"csrf_token": csrf_of(client.get("/posteingang").get_data(as_text=True))})
    token = csrf_of(client.get("/login").get_data(as_text=True))
    resp = client.post("/login?next=//evil.example/x", data={**form, "csrf_token": token})
    assert resp.headers["Location"] == "/posteingang"


def test_pages_need_a_login(client, users, web_rt):
    case_id = start(web_rt)[0]
    for url in ("/posteingang", f"/vorgaenge/{case_id}", "/uebersicht"):
        resp = client.get(url)
        assert resp.status_code == 302 and resp.headers["Location"].startswith("/login?next=")


def test_public_start_page_shows_no_cases(client, users, web_rt):
    start(web_rt)
    html = client.get("/").get_data(as_text=True)
    assert "Anmelden" in html and "MR-" not in html
    login(client, "anna")
    assert client.get("/").headers["Location"] == "/posteingang"


def test_overview_is_for_admins(client, users, web_rt):
    start(web_rt)
    login(client, "anna")
    assert client.get("/uebersicht").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_of(client.get("/posteingang").get_data(as_text=True))})
    login(client, "root")
    assert "MR-022.31-2026-00001" in client.get("/uebersicht").get_data(as_text=True)


def test_security_headers(logged_in):
    resp = logged_in.get("/posteingang")
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-eval" not in csp and "frame-ancestors 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff" and resp.headers["Cache-Control"] == "no-store"
    cookie = resp.request.headers.get("Cookie", "")
    assert "ozgflow_session" in cookie


def test_secret_key_is_made_once_into_var(app, web_rt):
    path = web_rt.settings.var_dir / "secret_key"
    assert path.read_text().strip() == app.config["SECRET_KEY"] and len(app.config["SECRET_KEY"]) == 64
    assert oct(path.stat().st_mode & 0o777) == "0o600"
