"""The outside security review (issue 10), each finding reproduced over HTTP and now refused.

Grant targets are pinned to the site's router hosts; no fleet password leaves in clear; the
openNDS node suffix, option name, authmon key and replay nonce (authmon: test_gateway_api.py).
"""
from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest

from hotspot_hooks.opennds import encrypt_payload
from portal.operator_kit import build_kit
from tests.conftest import TOKEN, make_config

from .helpers import FASKEY, add_site, recording, replay

FLEET_PASSWORD = "fleet-Passw0rd-shared-by-2303-routers"
EVIL = "evil.example"
REFUSED_HOST = "not this hotspot's registered router"
REFUSED_CLEAR = "must be set to CHAP login"


@pytest.fixture
def app_config(redis, redis_server, tmp_path):
    return make_config(redis_server.url, tmp_path / "var", OPENNDS_FASKEY=FASKEY, MIKROTIK_USERNAME="warga",
                       MIKROTIK_PASSWORD=FLEET_PASSWORD)


@pytest.fixture(autouse=True)
def english(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"


def refused(response, text: str) -> str:
    html = response.get_data(as_text=True)
    assert response.status_code == 403, html[:300]
    assert "Location" not in response.headers and EVIL not in html and FLEET_PASSWORD not in html
    assert text in html
    return html


def fas_level1(**changes) -> str:
    """The recorded level-1 query with payload fields changed (level 1 is plain base64)."""
    query = recording("opennds", "level1_capture")["query"]
    plain = base64.b64decode(query.split("fas=", 1)[1]).decode()
    for name, value in changes.items():
        start = plain.index(f"{name}=")
        end = plain.find(", ", start)
        plain = plain[:start] + f"{name}={value}" + plain[end:]
    return "fas=" + base64.b64encode(plain.encode()).decode()


# --- 1. The grant goes wherever the arrival says -------------------------------------------------

def test_mikrotik_login_url_elsewhere_gets_a_refusal_not_a_redirect(resident):
    # Before: 303 https://evil.example/login?username=T-… from the registered site's landing page.
    landing = resident.arrive(**{"link-login-only": f"https://{EVIL}/", "link-login": ""})
    assert "Wantilan Desa Adat Baler Bale Agung" in landing.get_data(as_text=True)
    refused(resident.connect(), REFUSED_HOST)


@pytest.mark.parametrize(("lang", "text"), [
    ("id", "bukan router terdaftar hotspot ini"),
    ("ban", "nenten router kadaftar ring hotspot puniki"),
    ("en", REFUSED_HOST),
])
def test_the_refusal_page_is_translated(resident, lang, text):
    resident.arrive(**{"link-login-only": f"http://{EVIL}/login", "link-login": "", "lang": lang})
    assert text in resident.client.post(f"/p/{resident.token}/connect?lang={lang}").get_data(as_text=True)


def test_opennds_authaction_and_gatewayaddress_elsewhere_are_refused(app, redis, resident):
    add_site(app, redis, site_id="BALI-ONDS0", vendor="opennds", gateway_id="openNDS Node:e4956e4d641c")
    level0 = recording("opennds", "level0_capture")["query"].replace("192.168.1.1:2050", EVIL)
    replay(resident, "opennds", "level0_capture", query=level0)
    refused(resident.connect(), REFUSED_HOST)
    replay(resident, "opennds", "level1_capture", query=fas_level1(gatewayaddress=f"{EVIL}:2050"))
    refused(resident.connect(), REFUSED_HOST)


def test_coovachilli_uamip_elsewhere_is_refused(app, redis, resident):
    add_site(app, redis, site_id="BALI-COOVA", vendor="coovachilli", gateway_id="fonlo",
             settings={"username": "guest"}, secrets={"password": "hspass"})
    query = recording("coovachilli", "notyet_capture_unsigned")["query"].replace("uamip=192.168.182.1", f"uamip={EVIL}")
    replay(resident, "coovachilli", "notyet_capture_unsigned", query=query)
    refused(resident.connect(), REFUSED_HOST)


def test_wifidog_gw_address_elsewhere_is_refused(app, redis, resident):
    add_site(app, redis, site_id="BALI-WDOG", vendor="wifidog", gateway_id="001217DA42D2")
    query = recording("wifidog", "login")["query"].replace("gw_address=192.168.1.1", f"gw_address={EVIL}")
    replay(resident, "wifidog", "login", query=query)
    refused(resident.connect(), REFUSED_HOST)


def test_pfsense_portal_action_elsewhere_is_refused(app, redis, resident):
    add_site(app, redis, site_id="BALI-PF", vendor="pfsense", gateway_id="pf-5101011006")
    form = {**recording("pfsense", "zone_page")["form"], "portal_action": f"https://{EVIL}/index.php?zone=guest"}
    resident.arrive("pfsense", data=form)
    refused(resident.connect(), REFUSED_HOST)


def test_router_hosts_setting_is_the_sites_allow_list(app, redis, resident):
    # A hotspot DNS name is allowed once listed; the default private ranges then no longer are.
    add_site(app, redis, site_id="BALI-0001", vendor="mikrotik", gateway_id="hs-5101011006-1",
             settings={"options": {"router_hosts": "login.wifi, 10.8.0.0/16"}})
    for login, allowed in (("http://login.wifi/login", True), ("http://10.8.3.1/login", True),
                           ("http://10.5.50.1/login", False), (f"http://{EVIL}/login", False),
                           ("http://login.wifi.evil.example/login", False)):
        resident.arrive(**{"link-login-only": login, "link-login": ""})
        response = resident.connect()
        if allowed:
            assert response.status_code == 303 and response.headers["Location"].startswith(login + "?"), login
        else:
            refused(response, REFUSED_HOST)


def test_unknown_gateway_gets_private_addresses_only(resident):
    # A registered site also accepts CGNAT and link-local router addresses; an unknown one does not.
    resident.arrive(identity="hs-not-registered", **{"link-login-only": "http://100.64.0.1/login", "link-login": ""})
    refused(resident.connect(), REFUSED_HOST)
    resident.arrive(**{"link-login-only": "http://100.64.0.1/login", "link-login": ""})
    assert resident.connect().headers["Location"].startswith("http://100.64.0.1/login?")
    resident.arrive(identity="hs-not-registered")
    assert resident.connect().headers["Location"].startswith("http://10.5.50.1/login?")


def test_continue_url_is_a_link_never_a_portal_redirect(app, redis, resident, client):
    add_site(app, redis, site_id="BALI-ONDS", vendor="opennds", gateway_id="openNDS Node:e4956e4d641c",
             settings={"options": {"fas_secure_enabled": "3"}}, secrets={"faskey": FASKEY, "authmon_key": "k" * 20})
    replay(resident, "opennds", "level2_capture")
    page = resident.connect()
    assert page.status_code == 200 and "Location" not in page.headers
    client.post("/hotspot/opennds/BALI-ONDS/" + "k" * 20, data={
        "auth_get": "view", "gatewayhash": hashlib.sha256(b"openNDS%20Node%3ae4956e4d641c%20").hexdigest(),
        "payload": "* ea1d0c0f952a860e187c774f94de7188507c0dcc6197c3b8daa383b244eeadc7"})
    online = client.get(f"/p/{resident.token}/wait")
    assert online.status_code == 200 and "Location" not in online.headers
    assert 'href="http://connectivitycheck.gstatic.com/generate_204"' in online.get_data(as_text=True)


# --- 2. Shared passwords to anyone ---------------------------------------------------------------

CHAP = {"chap-id": "\\371", "chap-challenge": "\\357\\015\\330\\013\\021\\234\\145\\245\\303\\253\\142\\246\\133\\175\\375\\316"}


def test_mikrotik_account_site_without_chap_gets_a_refusal_not_the_password(app, redis, resident):
    # Before: the plaintext fleet password in the auto-submitting form (a CHAP -> PAP downgrade).
    add_site(app, redis, site_id="BALI-0001", vendor="mikrotik", gateway_id="hs-5101011006-1",
             settings={"login_mode": "account", "username": "warga"})
    resident.arrive()
    refused(resident.connect(), REFUSED_CLEAR)
    resident.arrive(**CHAP)
    html = resident.connect().get_data(as_text=True)
    from hotspot_hooks.mikrotik import chap_response
    assert f'name="password" value="{chap_response(CHAP["chap-id"], FLEET_PASSWORD, CHAP["chap-challenge"])}"' in html
    assert FLEET_PASSWORD not in html


def test_pap_only_with_the_sites_opt_in_and_its_own_password(app, redis, resident):
    add_site(app, redis, site_id="BALI-0001", vendor="mikrotik", gateway_id="hs-5101011006-1",
             settings={"login_mode": "account", "username": "warga", "options": {"allow_pap": "yes"}})
    resident.arrive()
    refused(resident.connect(), REFUSED_CLEAR)  # opted in, but only the fleet password: never in clear
    add_site(app, redis, site_id="BALI-0001", vendor="mikrotik", gateway_id="hs-5101011006-1",
             settings={"login_mode": "account", "username": "warga", "options": {"allow_pap": "yes"}},
             secrets={"password": "this-router-only"})
    resident.arrive(**{"link-login-only": "https://10.5.50.1/login"})
    html = resident.connect().get_data(as_text=True)
    assert 'name="password" value="this-router-only"' in html


def test_unknown_coovachilli_gateway_never_gets_the_fleet_password(resident, client):
    # Before: 303 http://evil.example:3990/logon?username=warga&password=<fleet password>.
    resident.arrive("coovachilli", data={"res": "notyet", "uamip": EVIL, "uamport": "3990", "nasid": "zz",
                                         "mac": "5C-1D-D9-20-A0-C1"})
    refused(resident.connect(), REFUSED_HOST)
    # At a private address too: chilli without a challenge would take the password in clear.
    resident.arrive("coovachilli", data={"res": "notyet", "uamip": "10.1.0.1", "uamport": "3990", "nasid": "zz",
                                         "mac": "5C-1D-D9-20-A0-C1"})
    refused(resident.connect(), REFUSED_CLEAR)
    # With a challenge, only a CHAP response leaves.
    resident.arrive("coovachilli", data={"res": "notyet", "uamip": "10.1.0.1", "uamport": "3990", "nasid": "zz",
                                         "mac": "5C-1D-D9-20-A0-C1", "challenge": "5b1d296db7826a655411dcd83ee25154"})
    location = resident.connect().headers["Location"]
    query = parse_qs(urlsplit(location).query)
    assert "response" in query and "password" not in query and FLEET_PASSWORD not in location


def test_unknown_pfsense_gateway_never_gets_the_fleet_password(resident):
    form = {**recording("pfsense", "zone_page")["form"], "gateway_id": "pf-unknown"}
    resident.arrive("pfsense", data=form)
    refused(resident.connect(), REFUSED_CLEAR)


# --- 3. openNDS ----------------------------------------------------------------------------------

def test_opennds_router_from_the_kit_is_recognised_with_its_node_suffix(app, redis, resident):
    # Before: "hs-5101011008-1 Node:e4956e4d641c" was an unregistered gateway (fleet settings only).
    add_site(app, redis, site_id="BALI-KIT", vendor="opennds", gateway_id="hs-5101011008-1",
             settings={"options": {"fas_secure_enabled": "1"}, "minutes": 45})
    query = fas_level1(gatewayname="hs-5101011008-1%20Node%3ae4956e4d641c%20")
    assert "Balai Banjar BALI-KIT" in replay(resident, "opennds", "level1_capture", query=query).get_data(as_text=True)
    from portal import sessions
    with app.app_context():
        session = sessions.load(resident.token)
    assert session.site_id == "BALI-KIT" and session.arrival.extra["node"] == "e4956e4d641c"
    # And a router that does not add the suffix finds a site registered with it.
    add_site(app, redis, site_id="BALI-SUFFIXED", vendor="opennds", gateway_id="hs-5101011009-1 Node:0123456789ab")
    query = fas_level1(gatewayname="hs-5101011009-1")
    assert "Balai Banjar BALI-SUFFIXED" in replay(resident, "opennds", "level1_capture", query=query).get_data(as_text=True)


def test_kit_and_adapter_use_one_option_name(app, redis, resident):
    # The kit wrote fas_secure_enabled from "opennds_level", which the adapter never read.
    site = add_site(app, redis, site_id="BALI-ONDS", vendor="opennds", gateway_id="openNDS Node:e4956e4d641c",
                    settings={"options": {"fas_secure_enabled": "2"}}, secrets={"faskey": FASKEY})
    kit = build_kit(site, public_url="https://portal.test", lapor_url="https://www.lapor.go.id")
    assert "option fas_secure_enabled '2'" in kit.files["opennds.uci"]
    assert "option faspath '/hotspot/opennds/BALI-ONDS'" in kit.files["opennds.uci"]
    assert replay(resident, "opennds", "level1_capture").status_code == 403  # the site's level is enforced
    # A site set up with the old name keeps its level.
    add_site(app, redis, site_id="BALI-ONDS", vendor="opennds", gateway_id="openNDS Node:e4956e4d641c",
             settings={"options": {"opennds_level": "2"}}, secrets={"faskey": FASKEY})
    assert replay(resident, "opennds", "level1_capture").status_code == 403


def test_level3_kit_names_the_authmon_key_in_the_faspath(app, redis):
    site = add_site(app, redis, site_id="BALI-ONDS", vendor="opennds", gateway_id="hs-1")
    kit = build_kit(site, public_url="https://portal.test", lapor_url="https://www.lapor.go.id")
    assert "option faspath '/hotspot/opennds/BALI-ONDS/AUTHMON_KEY'" in kit.files["opennds.uci"]
    assert any("secret set BALI-ONDS authmon_key" in step for step in kit.steps)
    assert any("fas_secure_enabled=3" in step for step in kit.steps)


def test_opennds_replay_with_a_changed_iv_is_refused(app, redis, resident):
    # Before: the nonce was the iv, and CBC decrypts a captured payload under any iv.
    add_site(app, redis, site_id="BALI-ONDS", vendor="opennds", gateway_id="openNDS Node:e4956e4d641c",
             settings={"options": {"fas_secure_enabled": "2"}}, secrets={"faskey": FASKEY})
    query = recording("opennds", "level2_capture")["query"]
    assert replay(resident, "opennds", "level2_capture").status_code == 200
    # iv[6] 'd' -> 'e' flips hid[2] '4' -> '5': still hex, still a well-formed payload.
    changed = query.replace("iv=3ef72fdbb9cc115b", "iv=3ef72febb9cc115b")
    assert changed != query
    again = replay(resident, "opennds", "level2_capture", query=changed)
    assert again.status_code == 403 and not resident.token


def test_opennds_returning_resident_with_a_fresh_redirect_is_not_refused(app, redis, resident):
    # The router re-encrypts the same hid under a new iv each time: that is not a replay.
    add_site(app, redis, site_id="BALI-ONDS", vendor="opennds", gateway_id="openNDS Node:e4956e4d641c",
             settings={"options": {"fas_secure_enabled": "2"}}, secrets={"faskey": FASKEY})
    plain = ("hid=f540a744cd6ade72cfdb796c890817d32854ad01412c9b96bba6af90a556d089, clientip=192.168.1.249, "
             "clientmac=0e:2a:69:75:97:18, gatewayname=openNDS%20Node%3ae4956e4d641c%20, "
             "gatewayaddress=192.168.1.1:2050, authdir=opennds_auth, originurl=http%3a%2f%2fexample.com%2f")
    for iv in ("0123456789abcdef", "fedcba9876543210"):
        response = replay(resident, "opennds", "level2_capture", query=f"fas={encrypt_payload(plain, iv, FASKEY)}&iv={iv}")
        assert response.status_code == 200 and resident.token


def test_opennds_site_faskey_decrypts_on_the_sites_fas_path(app, redis, resident):
    # A router keeping its own faskey (as the kit says) is read on the faspath naming its site.
    own = "0f" * 32
    add_site(app, redis, site_id="BALI-OWN", vendor="opennds", gateway_id="hs-own",
             settings={"options": {"fas_secure_enabled": "2"}}, secrets={"faskey": own})
    plain = ("hid=" + "ab" * 32 + ", clientip=192.168.1.9, clientmac=0e:2a:69:75:97:18, gatewayname=hs-own%20Node%3a"
             "e4956e4d641c%20, gatewayaddress=192.168.1.1:2050, authdir=opennds_auth, originurl=")
    query = f"fas={encrypt_payload(plain, '0123456789abcdef', own)}&iv=0123456789abcdef"
    page = resident.client.get(f"/hotspot/opennds/BALI-OWN?{query}")
    assert page.status_code == 200 and "Balai Banjar BALI-OWN" in page.get_data(as_text=True)
    resident.token = TOKEN.search(page.get_data(as_text=True)).group(1)
    assert parse_qs(urlsplit(resident.connect().headers["Location"]).query)["tok"] == [
        hashlib.sha256(("ab" * 32 + own).encode()).hexdigest()]
    # The site's key never vouches for another gateway's name, nor on another path.
    other = plain.replace("gatewayname=hs-own", "gatewayname=hs-other")
    forged = f"fas={encrypt_payload(other, '0123456789abcdef', own)}&iv=0123456789abcdef"
    assert resident.client.get(f"/hotspot/opennds/BALI-OWN?{forged}").status_code == 403
    assert resident.client.get(f"/hotspot/opennds?{query}&_path_faskey={own}&_path_gateway=hs-own").status_code == 403
