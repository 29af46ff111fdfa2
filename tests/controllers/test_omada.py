"""Omada adapter against a stand-in controller over real HTTP."""
from __future__ import annotations

import logging

import pytest

from hotspot_hooks import (ControllerAuthError, ControllerRejectedError, ControllerUnreachableError, HookError,
                           NotAClientError, SiteSettings)
from hotspot_hooks.omada import PAGE_SIZE, OmadaHook
from tests.conftest import TOKEN, tracking_number

from .conftest import OMADA_ARRIVAL, omada_options, omada_secrets
from .standins import OmadaStandIn

HOOK = OmadaHook()


def settings_for(standin, minutes=60, secrets=None, **options) -> SiteSettings:
    return SiteSettings(minutes=minutes, options={"controller_url": standin.url, "controller_timeout": "1",
                                                  **omada_options(standin), **options},
                        secrets={**omada_secrets(standin), **(secrets or {})})


def auth_posts(standin) -> list:
    return [call for call in standin.calls if call[1].endswith("/extPortal/auth")]


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
    standin.connect_client(OMADA_ARRIVAL["clientMac"])
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
    assert omada_controller.token_grants == 1  # the Open API token is reused too
    omada_controller.expire_sessions()
    HOOK.authorize(HOOK.parse_arrival(OMADA_ARRIVAL), settings)
    assert omada_controller.logins == 2 and len(omada_controller.granted) == 3
    assert omada_controller.token_grants == 2


def test_client_check_asks_the_open_api_before_the_grant(omada_controller):
    HOOK.authorize(HOOK.parse_arrival(OMADA_ARRIVAL), settings_for(omada_controller))
    paths = [path for _, path in omada_controller.calls]
    listing = f"/openapi/v1/{omada_controller.controller_id}/sites/{omada_controller.site_id}/clients"
    assert paths.index(listing) < paths.index(f"/{omada_controller.controller_id}/api/v2/hotspot/extPortal/auth")


def test_a_device_that_is_not_a_client_is_refused_before_any_grant(omada_controller):
    args = {**OMADA_ARRIVAL, "clientMac": "02-11-22-33-44-55"}
    with pytest.raises(NotAClientError, match="no such connected client"):
        HOOK.authorize(HOOK.parse_arrival(args), settings_for(omada_controller))
    assert omada_controller.granted == [] and auth_posts(omada_controller) == []


def test_a_client_of_another_ap_is_refused(omada_controller):
    omada_controller.clients.clear()
    omada_controller.connect_client(OMADA_ARRIVAL["clientMac"], ap_mac="B0-95-75-15-00-01")
    with pytest.raises(NotAClientError, match="another AP"):
        HOOK.authorize(HOOK.parse_arrival(OMADA_ARRIVAL), settings_for(omada_controller))
    assert omada_controller.granted == []


def test_client_is_found_on_a_later_page(omada_controller):
    omada_controller.clients.clear()
    for n in range(PAGE_SIZE * 2 + 10):
        omada_controller.connect_client(f"02-00-00-00-{n // 256:02X}-{n % 256:02X}")
    omada_controller.connect_client(OMADA_ARRIVAL["clientMac"])
    HOOK.authorize(HOOK.parse_arrival(OMADA_ARRIVAL), settings_for(omada_controller))
    assert len(omada_controller.granted) == 1


def test_wrong_open_api_secret_names_the_secret_and_grants_nothing(omada_controller):
    settings = settings_for(omada_controller, secrets={"omada_client_secret": "rotated"})
    with pytest.raises(ControllerAuthError, match="omada_client_id/omada_client_secret"):
        HOOK.authorize(HOOK.parse_arrival(OMADA_ARRIVAL), settings)
    assert omada_controller.granted == []


def test_missing_open_api_application_names_the_secrets(omada_controller):
    settings = settings_for(omada_controller)
    settings = SiteSettings(options=settings.options, secrets={k: v for k, v in settings.secrets.items()
                                                               if not k.startswith("omada_client")})
    with pytest.raises(ControllerAuthError, match="omada_client_id/omada_client_secret"):
        HOOK.authorize(HOOK.parse_arrival(OMADA_ARRIVAL), settings)
    assert omada_controller.calls == []


def test_site_comes_from_the_option_never_the_arrival(omada_controller):
    HOOK.authorize(HOOK.parse_arrival({**OMADA_ARRIVAL, "site": "Other"}), settings_for(omada_controller))
    assert omada_controller.granted[0]["site"] == "Default"


@pytest.mark.parametrize("option", ["omada_site", "omada_site_id"])
def test_missing_site_option_is_named(omada_controller, option):
    with pytest.raises(HookError, match=option):
        HOOK.authorize(HOOK.parse_arrival(OMADA_ARRIVAL), settings_for(omada_controller, **{option: ""}))
    assert omada_controller.granted == []


def test_malformed_client_ip_is_dropped():
    assert HOOK.parse_arrival({**OMADA_ARRIVAL, "clientIp": "192.168.100.165<script>"}).client_ip == ""
    assert HOOK.parse_arrival({**OMADA_ARRIVAL, "clientIp": " 192.168.100.165 "}).client_ip == "192.168.100.165"


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
                                   **omada_options(standin)}, omada_secrets(standin))


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
    again = client.post(f"/p/{resident.token}/connect")  # one grant per session
    assert again.status_code == 200 and "You are online" in again.get_data(as_text=True)
    assert len(omada_controller.granted) == 1


def test_crafted_arrival_for_a_device_elsewhere_is_refused(omada_controller, wiring, client, caplog):
    omada_site(wiring, omada_controller)
    query = {**OMADA_ARRIVAL, "clientMac": "02-AA-BB-CC-DD-EE", "site": "Elsewhere", "lang": "en"}
    token = TOKEN.search(client.get("/hotspot/omada", query_string=query).get_data(as_text=True)).group(1)
    with caplog.at_level(logging.WARNING):
        page = client.post(f"/p/{token}/connect")
    assert page.status_code == 403 and "This device is not on the hotspot" in page.get_data(as_text=True)
    assert omada_controller.granted == [] and auth_posts(omada_controller) == []
    assert "BALI-O001" in caplog.text and "02-aa-bb" not in caplog.text.lower()


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
    assert omada_controller.granted == []
    line = "\n".join(r.getMessage() for r in caplog.records if "grant failed" in r.getMessage())
    assert "BALI-O001" in line and fix in line
    assert "52-de-63" not in caplog.text.lower() and "52:de:63" not in caplog.text.lower()
    assert "192.168.100.165" not in caplog.text and "omada-pass" not in caplog.text
