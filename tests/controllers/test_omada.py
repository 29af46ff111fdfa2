"""Omada adapter against a stand-in controller over real HTTP."""
from __future__ import annotations

import logging

import pytest

from hotspot_hooks import ControllerAuthError, ControllerRejectedError, ControllerUnreachableError, HookError, SiteSettings
from hotspot_hooks.omada import OmadaHook
from tests.conftest import TOKEN, tracking_number

from .conftest import OMADA_ARRIVAL
from .standins import OmadaStandIn

HOOK = OmadaHook()


def settings_for(standin, minutes=60, **options) -> SiteSettings:
    return SiteSettings(minutes=minutes, options={"controller_url": standin.url, "controller_timeout": "1",
                                                  "omada_controller_id": standin.controller_id, **options},
                        secrets={"controller_username": standin.name, "controller_password": standin.password})


def test_parse_arrival_reads_the_capture():
    arrived = HOOK.parse_arrival(OMADA_ARRIVAL)
    assert arrived.gateway_id == "B0-95-75-15-93-44"
    assert arrived.client_mac == "52:DE:63:F1:E3:3B"
    assert arrived.extra["site"] == "Default"


@pytest.mark.parametrize("unit,factor", [("ms", 1000), ("us", 1_000_000), ("", 1000)])
def test_authorize_with_configurable_time_unit(omada_controller, unit, factor):
    grant = HOOK.authorize(HOOK.parse_arrival(OMADA_ARRIVAL), settings_for(omada_controller, 30, omada_time_unit=unit))
    assert grant.kind == "done"
    assert omada_controller.granted == [{"clientMac": "52-DE-63-F1-E3-3B", "apMac": "B0-95-75-15-93-44",
                                         "ssidName": "eap225", "radioId": 0, "site": "Default",
                                         "time": 30 * 60 * factor, "authType": 4}]


def test_gateway_portal_variant(omada_controller):
    args = {"clientMac": "52-DE-63-F1-E3-3B", "gatewayMac": "00-11-22-33-44-55", "vid": "10", "site": "Default"}
    HOOK.authorize(HOOK.parse_arrival(args), settings_for(omada_controller))
    assert omada_controller.granted[0]["gatewayMac"] == "00-11-22-33-44-55"
    assert omada_controller.granted[0]["vid"] == 10


def test_pre_511_cookie_name():
    standin = OmadaStandIn(cookie_name="TPEAP_SESSIONID").start()
    try:
        HOOK.authorize(HOOK.parse_arrival(OMADA_ARRIVAL), settings_for(standin))
        assert len(standin.granted) == 1
    finally:
        standin.stop()


def test_session_reused_then_renewed(omada_controller):
    settings = settings_for(omada_controller)
    for _ in range(2):
        HOOK.authorize(HOOK.parse_arrival(OMADA_ARRIVAL), settings)
    assert omada_controller.logins == 1
    omada_controller.expire_sessions()
    HOOK.authorize(HOOK.parse_arrival(OMADA_ARRIVAL), settings)
    assert omada_controller.logins == 2 and len(omada_controller.granted) == 3


def test_bad_credentials(omada_controller):
    settings = settings_for(omada_controller)
    omada_controller.password = "rotated-on-the-controller"
    with pytest.raises(ControllerAuthError, match="Hotspot Manager"):
        HOOK.authorize(HOOK.parse_arrival(OMADA_ARRIVAL), settings)


def test_timeout_and_5xx(omada_controller):
    omada_controller.delay = 1.5
    with pytest.raises(ControllerUnreachableError):
        HOOK.authorize(HOOK.parse_arrival(OMADA_ARRIVAL), settings_for(omada_controller))
    omada_controller.delay, omada_controller.fail_status = 0, 503
    with pytest.raises(ControllerRejectedError, match="HTTP 503"):
        HOOK.authorize(HOOK.parse_arrival(OMADA_ARRIVAL), settings_for(omada_controller))


def test_missing_controller_id_names_the_option(omada_controller):
    with pytest.raises(HookError, match="omada_controller_id"):
        HOOK.authorize(HOOK.parse_arrival(OMADA_ARRIVAL), settings_for(omada_controller, omada_controller_id=""))


def omada_site(wiring, standin):
    wiring.configure("BALI-O001", {"minutes": 75, "controller_url": standin.url, "controller_timeout": 1,
                                   "omada_controller_id": standin.controller_id},
                     {"controller_username": standin.name, "controller_password": standin.password})


def test_resident_journey(omada_controller, wiring, client, resident):
    omada_site(wiring, omada_controller)
    response = client.get("/hotspot/omada", query_string={**OMADA_ARRIVAL, "lang": "en"})
    assert response.status_code == 200 and "Pasar Desa Banjar Tengah" in response.get_data(as_text=True)
    resident.token = TOKEN.search(response.get_data(as_text=True)).group(1)
    receipt = resident.submit(desa="Banjar Tengah")
    assert tracking_number(receipt.get_data(as_text=True))
    online = client.post(f"/p/{resident.token}/connect")
    assert online.status_code == 200 and "You are online" in online.get_data(as_text=True)
    assert omada_controller.granted[0]["clientMac"] == "52-DE-63-F1-E3-3B"
    assert omada_controller.granted[0]["time"] == 75 * 60 * 1000


@pytest.mark.parametrize("case,fix", [("bad_credentials", "controller_password"),
                                      ("timeout", "controller_timeout"), ("server_error", "HTTP 500")])
def test_failures_give_resident_a_page_and_operator_a_fix(case, fix, omada_controller, wiring, client, caplog):
    omada_site(wiring, omada_controller)
    if case == "bad_credentials":
        omada_controller.name = "someone-else"
    elif case == "timeout":
        omada_controller.delay = 1.5
    else:
        omada_controller.fail_status = 500
    response = client.get("/hotspot/omada", query_string={**OMADA_ARRIVAL, "lang": "en"})
    token = TOKEN.search(response.get_data(as_text=True)).group(1)
    with caplog.at_level(logging.ERROR):
        page = client.post(f"/p/{token}/connect")
    assert page.status_code == 502 and "Try again" in page.get_data(as_text=True)
    line = "\n".join(r.getMessage() for r in caplog.records if "grant failed" in r.getMessage())
    assert "BALI-O001" in line and fix in line
    assert "52-de-63" not in caplog.text.lower() and "52:de:63" not in caplog.text.lower()
    assert "192.168.100.165" not in caplog.text and "omada-pass" not in caplog.text
