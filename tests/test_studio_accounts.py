"""Studio accounts: sign-in, CSRF, lockout, TOTP, temporary passwords, the staff CLI, the audit trail."""
from __future__ import annotations

import re

import pyotp

from portal import audit
from portal.studio import accounts
from tests.studio_helpers import CSRF, PASSWORD, StaffClient, make_staff


def test_cli_creates_the_first_administrator_who_must_change_the_temporary_password(app, redis, runner):
    result = runner.invoke(args=["staff", "create", "--username", "kepala"])
    assert result.exit_code == 0, result.output
    temporary = re.search(r"temporary password: (\S+)", result.output).group(1)
    staff = StaffClient(app, "kepala", temporary)
    assert staff.response.status_code == 302
    page = staff.get("/studio/campaigns")
    assert page.status_code == 302 and page.headers["Location"].endswith("/studio/account/password")
    changed = staff.post("/studio/account/password", {"current": temporary, "new": "a much longer secret 1",
                                                       "repeat": "a much longer secret 1"})
    assert changed.status_code == 302
    assert staff.get("/studio/campaigns").status_code == 200
    record = accounts.by_name(redis, "51", "kepala")
    assert record["hash"].startswith("$argon2id$") and temporary not in str(record)
    actions = [e["action"] for e in audit.entries(redis, "51")]
    assert {"staff.create", "studio.sign_in", "staff.password_changed"} <= set(actions)


def test_staff_pages_are_indonesian_by_default_and_english_on_request(app, redis):
    page = app.test_client().get("/studio/login")
    assert '<html lang="id">' in page.text and "Masuk" in page.text
    english = app.test_client().get("/studio/login?lang=en")
    assert '<html lang="en">' in english.text and "Sign in" in english.text


def test_a_form_without_its_csrf_token_is_refused(app, redis):
    make_staff(app, redis, "editor1", "editor", "51.01")
    response = app.test_client().post("/studio/login", data={"username": "editor1", "password": PASSWORD})
    assert response.status_code == 400 and "formulir" in response.text.lower()
    assert "sid" not in (response.headers.get("Set-Cookie") or "")


def test_repeated_failures_lock_the_account_and_an_administrator_unlocks_it(app, redis):
    make_staff(app, redis, "admin1", "admin")
    make_staff(app, redis, "editor1", "editor", "51.01")
    for _ in range(5):
        wrong = StaffClient(app, "editor1", "not the password")
        assert wrong.response.status_code == 401
    locked = StaffClient(app, "editor1")  # the right password, but locked now
    assert locked.response.status_code == 401 and "terkunci" in locked.response.text
    admin = StaffClient(app, "admin1")
    record = accounts.by_name(redis, "51", "editor1")
    reset = admin.post(f"/studio/staff/{record['id']}/reset")
    temporary = re.search(r'id="temp-password">([^<]+)<', reset.text).group(1)
    assert StaffClient(app, "editor1", temporary).response.status_code == 302
    assert "staff.password_reset" in [e["action"] for e in audit.entries(redis, "51")]


def test_creating_staff_shows_the_temporary_password_once(app, redis):
    make_staff(app, redis, "admin1", "admin")
    admin = StaffClient(app, "admin1")
    page = admin.post("/studio/staff", {"username": "putu", "role": "editor", "region": "51.71", "lang": "id"})
    assert page.status_code == 200
    temporary = re.search(r'id="temp-password">([^<]+)<', page.text).group(1)
    assert accounts.by_name(redis, "51", "putu")["region"] == "5171"
    assert temporary not in admin.get("/studio/staff").text
    bad = admin.post("/studio/staff", {"username": "x", "role": "editor", "region": "99"})
    assert bad.status_code == 400 and 'role="alert"' in bad.text


def test_totp_second_factor(app, redis):
    make_staff(app, redis, "auditor1", "auditor")
    staff = StaffClient(app, "auditor1")
    start = staff.post("/studio/account", {"action": "totp_start"})
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', start.text).group(1)
    wrong = staff.post("/studio/account", {"action": "totp_confirm", "secret": secret, "code": "000000"})
    assert 'role="alert"' in wrong.text
    staff.post("/studio/account", {"action": "totp_confirm", "secret": secret, "code": pyotp.TOTP(secret).now()})
    record = accounts.by_name(redis, "51", "auditor1")
    assert record["totp"] and secret not in record["totp"]  # sealed at rest
    without = StaffClient(app, "auditor1")
    assert without.response.status_code == 401
    client = StaffClient.__new__(StaffClient)
    client.client = app.test_client()
    code = pyotp.TOTP(secret).now()
    signed = client.post("/studio/login", {"username": "auditor1", "password": PASSWORD, "code": code})
    assert signed.status_code == 302
    again = StaffClient.__new__(StaffClient)
    again.client = app.test_client()
    replayed = again.post("/studio/login", {"username": "auditor1", "password": PASSWORD, "code": code})
    assert replayed.status_code == 401  # a code signs in once


def test_sign_in_never_redirects_outside_the_studio(app, redis):
    make_staff(app, redis, "admin1", "admin")
    client = StaffClient.__new__(StaffClient)
    client.client = app.test_client()
    for target in ("https://evil.example/", "//evil.example/studio", "/p/x"):
        response = client.post("/studio/login?next=" + target, {"username": "admin1", "password": PASSWORD})
        assert response.headers["Location"] == "/studio/", target


def test_studio_pages_have_their_own_policy_and_cookie(app, redis):
    page = app.test_client().get("/studio/login")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    cookie = page.headers["Set-Cookie"]
    assert "Path=/studio" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert CSRF.search(page.text)


def test_the_language_switch_keeps_the_page_and_its_arguments(app, redis):
    make_staff(app, redis, "admin1", "admin")
    admin = StaffClient(app, "admin1")
    page = admin.get("/studio/sites?type=pasar&lang=en")
    assert 'href="/studio/sites?type=pasar&amp;lang=id"' in page.text and "Sites" in page.text
    assert "Lokasi" in admin.get("/studio/sites?lang=id").text
    assert "Sites" not in admin.get("/studio/sites").text.split("<main")[1], "the choice stays in the session"
