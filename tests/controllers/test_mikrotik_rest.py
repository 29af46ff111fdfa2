"""MikroTik login_mode "rest": the portal logs the client in over RouterOS v7 REST."""
from __future__ import annotations

import logging
import re
import time

import pytest

from hotspot_hooks import (ArrivalError, ControllerAuthError, ControllerRejectedError, ControllerUnreachableError,
                           NotAClientError, SiteSettings)
from hotspot_hooks.mikrotik import MikrotikHook
from hotspot_hooks.mikrotik_rest import COMMENT, SWEEP_AGE, one_time_user
from tests.conftest import MIKROTIK_ARRIVAL, TOKEN

HOOK = MikrotikHook()


def settings_for(router, **options) -> SiteSettings:
    return SiteSettings(minutes=40, quota_mb=100, login_mode="rest",
                        options={"rest_url": router.url, "controller_timeout": "1", "rest_profile": "portal", **options},
                        secrets={"rest_username": router.username, "rest_password": router.password})


def test_rest_login_checks_the_host_and_logs_in_a_one_time_user(rest_router):
    arrival = HOOK.parse_arrival(MIKROTIK_ARRIVAL)
    grant = HOOK.authorize(arrival, settings_for(rest_router))
    assert grant.kind == "done" and grant.url == "http://example.com/"
    assert rest_router.calls[0] == ("GET", "/rest/ip/hotspot/host")  # the client check comes first
    (user,) = rest_router.users.values()
    # No trace of the device in the name: a time and randomness.
    assert re.fullmatch(r"portal-\d{10}-[0-9a-f]{8}", user["name"]) and "708a09" not in user["name"]
    assert user["limit-uptime"] == "40m" and user["mac-address"] == "70:8A:09:65:4D:EC"
    assert user["limit-bytes-total"] == str(100 * 1024 * 1024) and user["profile"] == "portal"
    assert user["comment"] == COMMENT
    assert rest_router.active[0]["mac-address"] == "70:8A:09:65:4D:EC"
    assert rest_router.active[0]["ip"] == "10.5.50.253" and rest_router.active[0]["user"] == user["name"]


def test_users_of_ended_sessions_are_removed_and_none_is_kept_per_mac(rest_router):
    arrival = HOOK.parse_arrival(MIKROTIK_ARRIVAL)
    HOOK.authorize(arrival, settings_for(rest_router))
    (first,) = rest_router.users.values()
    first["name"] = one_time_user(now=time.time() - SWEEP_AGE - 5)  # made a while ago
    rest_router.end_sessions()
    rest_router.active.clear()
    HOOK.authorize(arrival, settings_for(rest_router))
    (second,) = rest_router.users.values()
    assert second[".id"] != first[".id"] and second["name"] == rest_router.active[0]["user"]
    assert ("DELETE", f"/rest/ip/hotspot/user/{first['.id']}") in rest_router.calls


def test_sweep_keeps_active_fresh_and_foreign_users(rest_router):
    settings = settings_for(rest_router)
    old = time.time() - SWEEP_AGE - 5
    rest_router.users.update({
        "*A0": {".id": "*A0", "name": one_time_user(now=old), "comment": COMMENT},        # ended: removed
        "*A1": {".id": "*A1", "name": "portal-708a09654ded", "comment": COMMENT},          # old per-MAC: removed
        "*A2": {".id": "*A2", "name": one_time_user(), "comment": COMMENT},               # another grant's: kept
        "*A3": {".id": "*A3", "name": "kasir", "comment": "front desk"},                  # not ours: kept
        "*A4": {".id": "*A4", "name": one_time_user(now=old), "comment": COMMENT},        # in use: kept
    })
    rest_router.active.append({"user": rest_router.users["*A4"]["name"]})
    HOOK.authorize(HOOK.parse_arrival(MIKROTIK_ARRIVAL), settings)
    assert {"*A2", "*A3", "*A4"} <= set(rest_router.users) and not {"*A0", "*A1"} & set(rest_router.users)
    assert len(rest_router.users) == 4  # and the new, active one


def test_a_failed_login_leaves_no_user_behind(rest_router):
    rest_router.refuse_logins = True
    with pytest.raises(ControllerRejectedError, match="host is not there"):
        HOOK.authorize(HOOK.parse_arrival(MIKROTIK_ARRIVAL), settings_for(rest_router))
    assert rest_router.users == {}


def test_an_already_logged_in_host_gets_no_new_user(rest_router):
    rest_router.hosts[0]["authorized"] = "true"
    grant = HOOK.authorize(HOOK.parse_arrival(MIKROTIK_ARRIVAL), settings_for(rest_router))
    assert grant.kind == "done" and rest_router.users == {} and rest_router.granted == []


@pytest.mark.parametrize("change", [{"mac": "02:11:22:33:44:55"}, {"ip": "10.5.50.99"}])
def test_a_device_that_is_not_a_host_is_refused_before_any_user_is_made(rest_router, change):
    with pytest.raises(NotAClientError, match="no hotspot host"):
        HOOK.authorize(HOOK.parse_arrival({**MIKROTIK_ARRIVAL, **change}), settings_for(rest_router))
    assert rest_router.users == {} and rest_router.granted == []
    assert [method for method, _ in rest_router.calls] == ["GET"]


def test_host_behind_one_to_one_nat_is_found_by_its_to_address(rest_router):
    rest_router.hosts.clear()
    rest_router.connect_client("70:8A:09:65:4D:EC", ip="192.168.88.20", to_address="10.5.50.253")
    HOOK.authorize(HOOK.parse_arrival(MIKROTIK_ARRIVAL), settings_for(rest_router))
    assert rest_router.active[0]["ip"] == "10.5.50.253"


@pytest.mark.parametrize("ip", ["", "10.5.50.253/../x", "999.1.1.1"])
def test_malformed_ip_is_refused_without_calling_the_router(rest_router, ip):
    with pytest.raises(ArrivalError, match="MAC and IP"):
        HOOK.authorize(HOOK.parse_arrival({**MIKROTIK_ARRIVAL, "ip": ip}), settings_for(rest_router))
    assert rest_router.calls == []


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


def portal_lines(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("portal", "hotspot_hooks")))


def test_rest_site_through_the_portal(rest_router, wiring, client, caplog):
    wiring.configure("BALI-M001", {"login_mode": "rest", "minutes": 40, "rest_url": rest_router.url,
                                   "controller_timeout": 1},
                     {"rest_username": rest_router.username, "rest_password": rest_router.password})
    page = client.post("/hotspot/mikrotik", data={**MIKROTIK_ARRIVAL, "identity": "hs-rest-1", "lang": "en"})
    token = TOKEN.search(page.get_data(as_text=True)).group(1)
    assert client.post(f"/p/{token}/connect").status_code == 200
    assert rest_router.active[0]["mac-address"] == "70:8A:09:65:4D:EC"
    calls = len(rest_router.calls)
    assert client.post(f"/p/{token}/connect").status_code == 200  # one grant per session
    assert len(rest_router.calls) == calls
    rest_router.fail_status = 503
    page = client.post("/hotspot/mikrotik", data={**MIKROTIK_ARRIVAL, "identity": "hs-rest-1", "lang": "en"})
    token = TOKEN.search(page.get_data(as_text=True)).group(1)
    with caplog.at_level(logging.ERROR):
        assert client.post(f"/p/{token}/connect").status_code == 502
    portal_log = portal_lines(caplog)  # the stand-in's own access log names the MAC, as a router's would
    assert "BALI-M001" in portal_log and "MikroTik REST API" in portal_log
    assert "70:8A:09" not in portal_log and "10.5.50.253" not in portal_log


def test_rest_site_refuses_a_crafted_arrival(rest_router, wiring, client, caplog):
    wiring.configure("BALI-M001", {"login_mode": "rest", "rest_url": rest_router.url, "controller_timeout": 1},
                     {"rest_username": rest_router.username, "rest_password": rest_router.password})
    crafted = {**MIKROTIK_ARRIVAL, "identity": "hs-rest-1", "mac": "02:AA:BB:CC:DD:EE", "lang": "en"}
    token = TOKEN.search(client.post("/hotspot/mikrotik", data=crafted).get_data(as_text=True)).group(1)
    with caplog.at_level(logging.WARNING):
        page = client.post(f"/p/{token}/connect")
    assert page.status_code == 403 and "This device is not on the hotspot" in page.get_data(as_text=True)
    assert rest_router.users == {} and rest_router.granted == []
    assert "BALI-M001" in portal_lines(caplog) and "02:AA:BB" not in portal_lines(caplog)
