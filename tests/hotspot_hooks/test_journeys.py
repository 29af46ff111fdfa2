"""Residents arriving through each vendor's recorded redirect: landing, complaint, grant, forgeries."""
from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from hotspot_hooks.opennds import encrypt_payload
from tests.conftest import TOKEN, make_config, tracking_number

from .helpers import FASKEY, add_site, recording, replay

COOVA_SECRETS = {"uamsecret": "secret", "password": "hspass"}


@pytest.fixture
def app_config(redis, redis_server, tmp_path):
    # openNDS levels 2/3 encrypt the gateway name: the fleet faskey finds the site.
    return make_config(redis_server.url, tmp_path / "var", OPENNDS_FASKEY=FASKEY)


@pytest.fixture(autouse=True)
def english(client):
    """Pages in English, so assertions can read their text."""
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"


def assert_landing_and_complaint(resident, response, site_name):
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html[:300]
    assert site_name in html and resident.token
    receipt = resident.submit()
    assert receipt.status_code == 200
    assert tracking_number(receipt.get_data(as_text=True))


def location(response):
    parts = urlsplit(response.headers["Location"])
    return f"{parts.scheme}://{parts.netloc}{parts.path}", parse_qs(parts.query)


# --- openNDS ------------------------------------------------------------------------------------

def opennds_site(app, redis, level="2", **settings):
    return add_site(app, redis, site_id="BALI-ONDS", vendor="opennds", gateway_id="openNDS Node:e4956e4d641c",
                    settings={"options": {"fas_secure_enabled": level}, **settings}, secrets={"faskey": FASKEY})


def test_opennds_level2_resident_is_granted_through_the_router(app, redis, resident):
    opennds_site(app, redis)
    assert_landing_and_complaint(resident, replay(resident, "opennds", "level2_capture"), "Balai Banjar BALI-ONDS")
    response = resident.connect()
    assert response.status_code == 303
    url, query = location(response)
    assert url == "http://192.168.1.1:2050/opennds_auth/"
    assert query["tok"] == ["ea1d0c0f952a860e187c774f94de7188507c0dcc6197c3b8daa383b244eeadc7"]
    assert query["redir"] == ["http://connectivitycheck.gstatic.com/generate_204"]


def test_opennds_level1_resident_is_granted(app, redis, resident):
    opennds_site(app, redis, level="1")
    assert_landing_and_complaint(resident, replay(resident, "opennds", "level1_capture"), "BALI-ONDS")
    _, query = location(resident.connect())
    assert query["tok"] == ["e4c55066ebdbdc37e3d4599095fa83c920d387997b5915842bea2c0b25cc324a"]


def test_opennds_level0_resident_is_granted_with_the_clear_token(app, redis, resident):
    add_site(app, redis, site_id="BALI-ONDS0", vendor="opennds", gateway_id="openNDS Node:e4956e4d641c")
    assert_landing_and_complaint(resident, replay(resident, "opennds", "level0_capture"), "BALI-ONDS0")
    url, query = location(resident.connect())
    assert url == "http://192.168.1.1:2050/opennds_auth/" and query["tok"] == ["89db8dfe"]


def test_opennds_replayed_redirect_is_refused(app, redis, resident):
    opennds_site(app, redis)
    assert replay(resident, "opennds", "level2_capture").status_code == 200
    again = replay(resident, "opennds", "level2_capture")
    assert again.status_code == 403
    assert "could not be verified" in again.get_data(as_text=True)


def test_opennds_altered_ciphertext_is_refused(app, redis, resident):
    opennds_site(app, redis)
    query = recording("opennds", "level2_capture")["query"]
    fas = query.split("fas=")[1].split("&")[0]
    forged = encrypt_payload("hid=" + "a" * 64 + ", gatewayname=openNDS%20Node%3ae4956e4d641c%20, "
                             "gatewayaddress=192.168.1.1:2050", "3ef72fdbb9cc115c", "0" * 64)
    for bad in (query.replace(fas, fas[:40] + ("A" if fas[40] != "A" else "B") + fas[41:]),
                f"fas={forged}&iv=3ef72fdbb9cc115c"):
        response = replay(resident, "opennds", "level2_capture", query=bad)
        assert response.status_code in (400, 403)
        assert not resident.token


def test_opennds_downgrade_to_plain_base64_is_refused(app, redis, resident):
    opennds_site(app, redis, level="2")
    response = replay(resident, "opennds", "level1_capture")
    assert response.status_code == 403 and not resident.token


AUTHMON_KEY = "k3y-of-site-onds-0123456789"


def test_opennds_authmon_grant_waits_for_the_router(app, redis, resident, client):
    add_site(app, redis, site_id="BALI-ONDS", vendor="opennds", gateway_id="openNDS Node:e4956e4d641c",
             settings={"options": {"fas_secure_enabled": "3"}, "minutes": 90, "download_kbps": 2048,
                       "upload_kbps": 512, "quota_mb": 500},
             secrets={"faskey": FASKEY, "authmon_key": AUTHMON_KEY})
    # The kit's faspath names the site and its authmon key; residents arrive there too.
    fas_path = f"/hotspot/opennds/BALI-ONDS/{AUTHMON_KEY}"
    rec = recording("opennds", "level2_capture")
    arrived = resident.client.get(f"{fas_path}?{rec['query']}", base_url="https://portal.test")
    resident.token = TOKEN.search(arrived.get_data(as_text=True)).group(1)
    assert_landing_and_complaint(resident, arrived, "BALI-ONDS")
    waiting = resident.connect()
    html = waiting.get_data(as_text=True)
    assert waiting.status_code == 200 and "Wait a moment" in html and 'http-equiv="refresh"' in html
    gatewayhash = hashlib.sha256(b"openNDS%20Node%3ae4956e4d641c%20").hexdigest()
    rhid = "ea1d0c0f952a860e187c774f94de7188507c0dcc6197c3b8daa383b244eeadc7"
    poll = {"auth_get": "view", "gatewayhash": gatewayhash, "payload": "none"}
    # The router's poll goes to the FAS URL itself; without the site's key it sees nothing.
    for keyless in ("/hotspot/opennds", "/gateway/opennds/authmon", f"/hotspot/opennds/BALI-ONDS/{'x' * 26}"):
        refused = client.post(keyless, data=poll)
        assert refused.status_code == 403 and rhid not in refused.get_data(as_text=True)
    listing = client.post(fas_path, data=poll)
    entry = f"{rhid} 90 512 2048 500000 500000 YmFsaS13aWZpLXBvcnRhbA=="
    assert listing.get_data(as_text=True) == "* " + quote(entry, safe="")
    assert "Wait a moment" in client.get(f"/p/{resident.token}/wait").get_data(as_text=True)
    ack = client.post(fas_path, data={"auth_get": "view", "gatewayhash": gatewayhash, "payload": f"* {rhid}"})
    assert ack.get_data(as_text=True) == "ack"
    online = client.get(f"/p/{resident.token}/wait").get_data(as_text=True)
    assert "You are online" in online


# --- CoovaChilli -------------------------------------------------------------------------------

def coova_site(app, redis):
    return add_site(app, redis, site_id="BALI-COOVA", vendor="coovachilli", gateway_id="fonlo",
                    settings={"username": "guest"}, secrets=COOVA_SECRETS)


def test_coovachilli_signed_arrival_is_granted_with_server_side_chap(app, redis, resident):
    coova_site(app, redis)
    assert_landing_and_complaint(resident, replay(resident, "coovachilli", "notyet_capture_signed_chap"), "BALI-COOVA")
    url, query = location(resident.connect())
    assert url == "http://192.168.182.1:3660/logon"
    assert query["username"] == ["guest"]
    assert query["response"] == ["38cb1e44fbcf6fc88dec1ee81b63d790"]
    assert query["userurl"] == ["http://captive.apple.com/hotspot-detect.html"]


@pytest.mark.parametrize("change", [
    ("mac=5C-1D-D9-20-A0-C1", "mac=5C-1D-D9-20-A0-C2"),  # altered client
    ("&md=", "&x=1&md="),                                 # added parameter
])
def test_coovachilli_altered_arrival_is_refused(app, redis, resident, change):
    coova_site(app, redis)
    query = recording("coovachilli", "notyet_capture_signed_chap")["query"].replace(*change)
    response = replay(resident, "coovachilli", "notyet_capture_signed_chap", query=query)
    assert response.status_code == 403 and not resident.token
    assert "could not be verified" in response.get_data(as_text=True)


def test_coovachilli_unsigned_or_foreign_arrival_at_a_signed_site_is_refused(app, redis, resident):
    coova_site(app, redis)
    assert replay(resident, "coovachilli", "notyet_capture_unsigned").status_code == 403
    add_site(app, redis, site_id="BALI-LIGO", vendor="coovachilli", gateway_id="192.168.200.44",
             settings={"username": "guest"}, secrets=COOVA_SECRETS)
    assert replay(resident, "coovachilli", "ligowave_wrong_secret").status_code == 403


def test_coovachilli_replayed_challenge_is_refused(app, redis, resident):
    coova_site(app, redis)
    assert replay(resident, "coovachilli", "notyet_capture_signed_chap").status_code == 200
    assert replay(resident, "coovachilli", "notyet_capture_signed_chap").status_code == 403


def _coova_outcome(query: str) -> str:
    base = "https://portal.test/hotspot/coovachilli"
    md = hashlib.md5(f"{base}?{query}secret".encode()).hexdigest().upper()
    return f"{query}&md={md}"


@pytest.mark.parametrize(("res", "text"), [
    ("success", "You are online"), ("already", "You are online"),
    ("logoff", "You are logged out"), ("failed&reason=reject", "did not let you in"),
])
def test_coovachilli_outcomes_each_get_a_clear_page(app, redis, resident, res, text):
    coova_site(app, redis)
    query = _coova_outcome(f"res={res}&uamip=192.168.182.1&uamport=3660&challenge=0123456789abcdef0123456789abcdef"
                           "&mac=5C-1D-D9-20-A0-C1&ip=192.168.182.64&nasid=fonlo&userurl=http%3a%2f%2fexample.com%2f")
    response = replay(resident, "coovachilli", "success", query=query)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and text in html
    if res.startswith("failed"):
        retry = resident.client.get(re.search(r'href="(/p/[^"]+)"', html).group(1))
        assert retry.status_code == 200 and "/connect" in retry.get_data(as_text=True)


# --- Meraki, WiFiDog, pfSense --------------------------------------------------------------------

def test_meraki_resident_is_sent_to_the_grant_url(app, redis, resident):
    add_site(app, redis, site_id="BALI-MERAKI", vendor="meraki", gateway_id="E0:CB:BC:B6:0C:83", settings={"minutes": 45})
    assert_landing_and_complaint(resident, replay(resident, "meraki", "clickthrough_capture"), "BALI-MERAKI")
    url, query = location(resident.connect())
    assert url == "https://n93.network-auth.com/splash/grant"
    assert query["continue_url"] == ["https://n93.network-auth.com/splash/connected?hide_terms=true"]
    assert query["duration"] == ["2700"]


def test_meraki_grant_url_elsewhere_is_refused(client):
    rec = recording("meraki", "foreign_grant_host")
    assert client.get(f"/hotspot/meraki?{rec['query']}").status_code == 400


def test_wifidog_resident_is_granted_by_token(app, redis, resident, client):
    add_site(app, redis, site_id="BALI-WDOG", vendor="wifidog", gateway_id="001217DA42D2")
    assert_landing_and_complaint(resident, replay(resident, "wifidog", "login"), "BALI-WDOG")
    url, query = location(resident.connect())
    assert url == "http://192.168.1.1:2060/wifidog/auth"
    token = query["token"][0]
    check = f"/wifidog/auth/?stage=login&ip=192.168.1.136&token={token}&incoming=0&outgoing=0&gw_id=001217DA42D2"
    assert client.get(check + "&mac=b8:27:eb:3d:11:8c").get_data(as_text=True) == "Auth: 1"


def test_pfsense_resident_posts_to_the_zone(app, redis, resident):
    add_site(app, redis, site_id="BALI-PF", vendor="pfsense", gateway_id="pf-5101011006",
             settings={"username": "guest"}, secrets={"password": "hspass"})
    assert_landing_and_complaint(resident, replay(resident, "pfsense", "zone_page"), "BALI-PF")
    html = resident.connect().get_data(as_text=True)
    assert 'action="http://192.168.1.1:8002/index.php?zone=guest"' in html
    for name, value in (("zone", "guest"), ("auth_user", "guest"), ("auth_pass", "hspass"), ("accept", "Continue"),
                        ("redirurl", "http://detectportal.firefox.com/canonical.html")):
        assert f'name="{name}" value="{value}"' in html
