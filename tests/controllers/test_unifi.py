"""UniFi adapter against stand-in controllers (classic and UniFi OS) over real HTTP."""
from __future__ import annotations

import logging
import re

import pytest

from hotspot_hooks import (ControllerAuthError, ControllerRejectedError, ControllerUnreachableError, NotAClientError,
                           SiteSettings)
from hotspot_hooks.unifi import UnifiHook, csrf_from_jwt
from tests.conftest import TOKEN, tracking_number

from .conftest import UNIFI_ARRIVAL
from .standins import fake_jwt

HOOK = UnifiHook()


def settings_for(standin, **options) -> SiteSettings:
    return SiteSettings(minutes=90, download_kbps=2048, upload_kbps=512, quota_mb=300,
                        options={"controller_url": standin.url, "controller_timeout": "1", **options},
                        secrets={"controller_username": standin.username, "controller_password": standin.password})


def arrival(**changes):
    return HOOK.parse_arrival({**UNIFI_ARRIVAL, "site": "default", **changes})


def test_parse_arrival_reads_the_redirect():
    arrived = arrival()
    assert arrived.gateway_id == "44:d9:e7:0a:80:43"
    assert arrived.client_mac == "70:8A:09:65:4D:EC"
    assert arrived.original_url.startswith("http://connectivitycheck")
    assert arrived.extra["site"] == "default"


def test_csrf_token_is_read_from_the_jwt_cookie():
    assert csrf_from_jwt(fake_jwt({"csrfToken": "abc"})) == "abc"
    assert csrf_from_jwt("not-a-jwt") == ""


@pytest.mark.parametrize("fixture", ["unifi_classic", "unifi_os"])
def test_authorize_guest_with_limits(request, fixture):
    standin = request.getfixturevalue(fixture)
    grant = HOOK.authorize(arrival(), settings_for(standin))
    assert grant.kind == "done" and grant.url.startswith("http://connectivitycheck")
    assert standin.granted == [{"site": "default", "cmd": "authorize-guest", "mac": "70:8a:09:65:4d:ec",
                                "minutes": 90, "up": 512, "down": 2048, "bytes": 300,
                                "ap_mac": "44:d9:e7:0a:80:43"}]
    prefix = "/proxy/network" if standin.unifi_os else ""
    # The client check comes first, then the one authorize call.
    api_calls = [call for call in standin.calls if "/api/s/" in call[1]]
    assert api_calls == [("GET", f"{prefix}/api/s/default/stat/sta/70:8a:09:65:4d:ec"),
                         ("POST", f"{prefix}/api/s/default/cmd/stamgr")]


@pytest.mark.parametrize("fixture", ["unifi_classic", "unifi_os"])
def test_a_device_that_is_not_a_client_is_refused_before_any_grant(request, fixture):
    # Classic answers an empty list for an unknown station, UniFi OS api.err.UnknownStation.
    standin = request.getfixturevalue(fixture)
    with pytest.raises(NotAClientError, match="no such online client on site 'default'"):
        HOOK.authorize(arrival(id="02:11:22:33:44:55"), settings_for(standin))
    assert standin.granted == []
    assert not [call for call in standin.calls if call[0] == "POST" and "stamgr" in call[1]]


def test_a_client_of_another_ap_is_refused(unifi_classic):
    unifi_classic.stations.clear()
    unifi_classic.connect_client(UNIFI_ARRIVAL["id"], ap_mac="44:d9:e7:0a:99:99")
    with pytest.raises(NotAClientError, match="another AP"):
        HOOK.authorize(arrival(), settings_for(unifi_classic))
    assert unifi_classic.granted == []


def test_a_client_on_another_controller_site_is_refused(unifi_classic):
    unifi_classic.stations.clear()
    unifi_classic.connect_client(UNIFI_ARRIVAL["id"], site="abc123xy")
    with pytest.raises(NotAClientError):
        HOOK.authorize(arrival(), settings_for(unifi_classic))
    assert unifi_classic.granted == []


def test_check_unreachable_fails_like_the_grant_and_authorizes_nothing(unifi_classic):
    unifi_classic.delay = 1.5
    with pytest.raises(ControllerUnreachableError, match="did not answer"):
        HOOK.authorize(arrival(), settings_for(unifi_classic))
    assert unifi_classic.granted == []
    assert [call[1] for call in unifi_classic.calls if "/api/s/" in call[1]] == [
        "/api/s/default/stat/sta/70:8a:09:65:4d:ec"]


def test_login_session_is_reused_and_renewed_on_401(unifi_os):
    for mac in ("70:8a:09:65:4d:ed", "70:8a:09:65:4d:ee"):
        unifi_os.connect_client(mac)
    settings = settings_for(unifi_os)
    HOOK.authorize(arrival(), settings)
    HOOK.authorize(arrival(id="70:8a:09:65:4d:ed"), settings)
    assert unifi_os.logins == 1
    unifi_os.expire_sessions()
    HOOK.authorize(arrival(id="70:8a:09:65:4d:ee"), settings)
    assert unifi_os.logins == 2
    assert len(unifi_os.granted) == 3


def test_unauthorize_guest(unifi_classic):
    HOOK.deauthorize(arrival(), settings_for(unifi_classic))
    assert unifi_classic.granted[-1]["cmd"] == "unauthorize-guest"


def test_site_comes_from_the_option(unifi_classic):
    unifi_classic.connect_client(UNIFI_ARRIVAL["id"], site="abc123xy")
    HOOK.authorize(arrival(), settings_for(unifi_classic, unifi_site="abc123xy"))
    assert unifi_classic.granted[0]["site"] == "abc123xy"


def test_the_arrival_path_never_picks_the_site(unifi_classic):
    # /guest/s/<site>/ is typed by whoever sends the request: without the option it is "default".
    HOOK.authorize(arrival(site="abc123xy"), settings_for(unifi_classic))
    assert unifi_classic.granted[0]["site"] == "default"


@pytest.mark.parametrize("fixture", ["unifi_classic", "unifi_os"])
def test_bad_credentials(request, fixture):
    standin = request.getfixturevalue(fixture)
    settings = settings_for(standin)
    settings = SiteSettings(options=settings.options, secrets={**settings.secrets, "controller_password": "wrong"})
    with pytest.raises(ControllerAuthError, match="controller_username/controller_password"):
        HOOK.authorize(arrival(), settings)


def test_missing_csrf_token_is_a_clear_403(unifi_os):
    unifi_os.csrf_in_jwt = False
    with pytest.raises(ControllerRejectedError, match="403.*no CSRF token") as caught:
        HOOK.authorize(arrival(), settings_for(unifi_os))
    assert caught.value.http_code == 403
    assert unifi_os.granted == []


def test_timeout(unifi_classic):
    unifi_classic.delay = 1.5
    with pytest.raises(ControllerUnreachableError, match="did not answer within 1 s.*controller_timeout"):
        HOOK.authorize(arrival(), settings_for(unifi_classic))


def test_server_error(unifi_classic):
    unifi_classic.fail_status = 502
    with pytest.raises(ControllerRejectedError, match="HTTP 502") as caught:
        HOOK.authorize(arrival(), settings_for(unifi_classic))
    assert caught.value.http_code == 502


def test_unknown_site_names_the_option(unifi_classic):
    with pytest.raises(ControllerRejectedError, match="NoSiteContext.*unifi_site"):
        HOOK.authorize(arrival(), settings_for(unifi_classic, unifi_site="nosuchsite"))
    assert unifi_classic.granted == []


def test_connection_refused(unifi_classic):
    url = unifi_classic.url
    unifi_classic.stop()
    with pytest.raises(ControllerUnreachableError, match="unreachable"):
        HOOK.authorize(arrival(), SiteSettings(options={"controller_url": url},
                                               secrets={"controller_username": "a", "controller_password": "b"}))


# --- the resident's journey through the portal -------------------------------------------------

def unifi_site(wiring, standin, **options):
    wiring.configure("BALI-U001", {"minutes": 45, "controller_url": standin.url, "controller_timeout": 1, **options},
                     {"controller_username": standin.username, "controller_password": standin.password})


def arrive(client, path="/guest/s/default/", **changes):
    response = client.get(path, query_string={**UNIFI_ARRIVAL, "lang": "en", **changes})
    match = TOKEN.search(response.get_data(as_text=True))
    return response, match.group(1) if match else ""


@pytest.mark.parametrize("fixture", ["unifi_classic", "unifi_os"])
def test_resident_journey(request, fixture, wiring, client, resident):
    standin = request.getfixturevalue(fixture)
    unifi_site(wiring, standin)
    response, token = arrive(client)
    assert response.status_code == 200 and token
    assert "Balai Banjar Uma" in response.get_data(as_text=True)
    resident.token = token
    receipt = resident.submit(desa="Baler Bale Agung")
    assert receipt.status_code == 200 and tracking_number(receipt.get_data(as_text=True))
    online = client.post(f"/p/{token}/connect")
    assert online.status_code == 200
    assert "You are online" in online.get_data(as_text=True)
    assert 'href="http://connectivitycheck.platform.hicloud.com/generate_204"' in online.get_data(as_text=True)
    assert standin.granted[0]["mac"] == "70:8a:09:65:4d:ec"
    assert standin.granted[0]["minutes"] == 45


def test_a_second_connect_shows_the_online_page_without_calling_the_controller(unifi_os, wiring, client):
    unifi_site(wiring, unifi_os)
    _, token = arrive(client)
    assert client.post(f"/p/{token}/connect").status_code == 200
    calls = len(unifi_os.calls)
    again = client.post(f"/p/{token}/connect")
    assert again.status_code == 200 and "You are online" in again.get_data(as_text=True)
    assert len(unifi_os.calls) == calls and len(unifi_os.granted) == 1


def test_crafted_arrival_for_a_device_elsewhere_is_refused(unifi_classic, wiring, client, caplog):
    # The finding: /guest/s/<any site>/?id=<any MAC>&ap=<a real AP>, then Connect.
    unifi_site(wiring, unifi_classic)
    _, token = arrive(client, "/guest/s/abc123xy/", id="02:aa:bb:cc:dd:ee")
    with caplog.at_level(logging.WARNING):
        page = client.post(f"/p/{token}/connect")
    assert page.status_code == 403
    text = page.get_data(as_text=True)
    assert "This device is not on the hotspot" in text and "Connect to the WiFi again" in text
    assert unifi_classic.granted == []
    assert ("GET", "/api/s/default/stat/sta/02:aa:bb:cc:dd:ee") in unifi_classic.calls  # never abc123xy
    line = "\n".join(r.getMessage() for r in caplog.records if "grant refused" in r.getMessage())
    assert "BALI-U001" in line and "no such online client" in line
    assert "02:aa:bb" not in caplog.text.lower()


def test_refusal_page_is_translated(unifi_classic, wiring, client):
    unifi_site(wiring, unifi_classic)
    unifi_classic.stations.clear()
    _, token = arrive(client)
    page = client.post(f"/p/{token}/connect?lang=id")
    assert page.status_code == 403 and "Perangkat ini tidak terhubung ke hotspot" in page.get_data(as_text=True)
    page = client.post(f"/p/{token}/connect?lang=ban")
    assert "Piranti puniki nenten masambung ring hotspot" in page.get_data(as_text=True)
    assert unifi_classic.granted == []


FAILURES = [
    ("bad_credentials", "refused the portal's login", "controller_password"),
    ("timeout", "did not answer within", "controller_timeout"),
    ("server_error", "HTTP 500", "check its health"),
    ("no_csrf", "403", "CSRF"),
]


@pytest.mark.parametrize("case,symptom,fix", FAILURES)
def test_failures_give_resident_a_page_and_operator_a_fix(case, symptom, fix, unifi_os, wiring, client, caplog):
    unifi_site(wiring, unifi_os)
    if case == "bad_credentials":
        unifi_os.password = "changed-on-the-controller"
    elif case == "timeout":
        unifi_os.delay = 1.5
    elif case == "server_error":
        unifi_os.fail_status = 500
    else:
        unifi_os.csrf_in_jwt = False
    _, token = arrive(client)
    with caplog.at_level(logging.ERROR):
        page = client.post(f"/p/{token}/connect")
    assert page.status_code == 502
    assert "did not answer" in page.get_data(as_text=True) and f"/p/{token}" in page.get_data(as_text=True)
    assert unifi_os.granted == []
    line = "\n".join(r.getMessage() for r in caplog.records if "grant failed" in r.getMessage())
    assert "BALI-U001" in line and symptom in line and fix in line
    log_text = caplog.text.lower()
    assert "70:8a:09" not in log_text and "unifi-pass" not in log_text
    assert not re.search(r"192\.168\.", log_text)
