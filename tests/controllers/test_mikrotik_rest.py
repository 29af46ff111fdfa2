"""MikroTik login_mode "rest": the portal logs the client in over RouterOS v7 REST."""
from __future__ import annotations

import logging

import pytest

from hotspot_hooks import ControllerAuthError, ControllerRejectedError, ControllerUnreachableError, SiteSettings
from hotspot_hooks.mikrotik import MikrotikHook
from tests.conftest import MIKROTIK_ARRIVAL, TOKEN

HOOK = MikrotikHook()


def settings_for(router, **options) -> SiteSettings:
    return SiteSettings(minutes=40, quota_mb=100, login_mode="rest",
                        options={"rest_url": router.url, "controller_timeout": "1", "rest_profile": "portal", **options},
                        secrets={"rest_username": router.username, "rest_password": router.password})


def test_rest_login_creates_user_with_limits_and_logs_in(rest_router):
    arrival = HOOK.parse_arrival(MIKROTIK_ARRIVAL)
    grant = HOOK.authorize(arrival, settings_for(rest_router))
    assert grant.kind == "done" and grant.url == "http://example.com/"
    (user,) = rest_router.users.values()
    assert user["name"] == "portal-708a09654dec" and user["limit-uptime"] == "40m"
    assert user["limit-bytes-total"] == str(100 * 1024 * 1024) and user["profile"] == "portal"
    assert rest_router.active[0]["mac-address"] == "70:8A:09:65:4D:EC"
    assert rest_router.active[0]["ip"] == "10.5.50.253"


def test_second_grant_replaces_the_user(rest_router):
    arrival = HOOK.parse_arrival(MIKROTIK_ARRIVAL)
    HOOK.authorize(arrival, settings_for(rest_router))
    HOOK.authorize(arrival, settings_for(rest_router))
    assert len(rest_router.users) == 1 and len(rest_router.active) == 2
    assert ("DELETE", "/rest/ip/hotspot/user/*1") in rest_router.calls


def test_bad_credentials_timeout_and_5xx(rest_router):
    arrival, settings = HOOK.parse_arrival(MIKROTIK_ARRIVAL), settings_for(rest_router)
    rest_router.password = "changed-on-the-router"
    with pytest.raises(ControllerAuthError, match="rest_username/rest_password"):
        HOOK.authorize(arrival, settings)
    rest_router.password = settings.secrets["rest_password"]
    rest_router.delay = 1.5
    with pytest.raises(ControllerUnreachableError):
        HOOK.authorize(arrival, settings)
    rest_router.delay, rest_router.fail_status = 0, 500
    with pytest.raises(ControllerRejectedError, match="HTTP 500"):
        HOOK.authorize(arrival, settings)


def test_trial_mode_is_unchanged():
    grant = HOOK.authorize(HOOK.parse_arrival(MIKROTIK_ARRIVAL), SiteSettings(login_mode="trial"))
    assert grant.kind == "redirect" and "username=T-70" in grant.url


def test_rest_site_through_the_portal(rest_router, wiring, client, caplog):
    wiring.configure("BALI-M001", {"login_mode": "rest", "minutes": 40, "rest_url": rest_router.url,
                                   "controller_timeout": 1},
                     {"rest_username": rest_router.username, "rest_password": rest_router.password})
    page = client.post("/hotspot/mikrotik", data={**MIKROTIK_ARRIVAL, "identity": "hs-rest-1", "lang": "en"})
    token = TOKEN.search(page.get_data(as_text=True)).group(1)
    assert client.post(f"/p/{token}/connect").status_code == 200
    assert rest_router.active[0]["mac-address"] == "70:8A:09:65:4D:EC"
    rest_router.fail_status = 503
    with caplog.at_level(logging.ERROR):
        assert client.post(f"/p/{token}/connect").status_code == 502
    assert "BALI-M001" in caplog.text and "MikroTik REST API" in caplog.text
    assert "70:8A:09" not in caplog.text and "10.5.50.253" not in caplog.text
