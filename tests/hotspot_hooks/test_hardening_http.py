"""The security review's findings over real HTTP: gunicorn with two workers, real Redis."""
from __future__ import annotations

import hashlib
import re

import pytest
import requests
from cryptography.fernet import Fernet

from portal import create_app
from portal.sites import import_sites, parse_csv
from tests.conftest import MIKROTIK_ARRIVAL, SITES_CSV, make_config
from tests.servers import Gunicorn, portal_env

from .helpers import FASKEY, add_site, recording

FLEET_PASSWORD = "fleet-Passw0rd-over-http"
AUTHMON_KEY = "authmon-key-over-http-0001"
GATEWAY_HASH = hashlib.sha256(b"openNDS%20Node%3ae4956e4d641c%20").hexdigest()
RHID = "ea1d0c0f952a860e187c774f94de7188507c0dcc6197c3b8daa383b244eeadc7"


@pytest.fixture
def portal_http(redis, redis_server, tmp_path):
    keys = Fernet.generate_key().decode()
    import_sites(redis, parse_csv(SITES_CSV))
    sealer = create_app(make_config(redis_server.url, tmp_path / "sealer", DATA_KEYS=keys))
    add_site(sealer, redis, site_id="BALI-ONDS", vendor="opennds", gateway_id="openNDS Node:e4956e4d641c",
             settings={"options": {"fas_secure_enabled": "3"}}, secrets={"faskey": FASKEY, "authmon_key": AUTHMON_KEY})
    server = Gunicorn(portal_env(redis_server.url, tmp_path / "var", data_keys=keys, MIN_FILL_SECONDS=0,
                                MIKROTIK_USERNAME="warga", MIKROTIK_PASSWORD=FLEET_PASSWORD)).start()
    yield server
    server.stop()


def connect(http, url: str, response):
    token = re.search(r"/p/([^/]+)/connect", response.text).group(1)
    return http.post(f"{url}/p/{token}/connect", allow_redirects=False, timeout=5)


def test_pinning_fleet_password_and_authmon_key_over_http(portal_http):
    http = requests.Session()
    http.headers["Accept-Language"] = "en"
    url = portal_http.url
    # The grant goes only to the site's router.
    landing = http.post(f"{url}/hotspot/mikrotik", timeout=5,
                        data={**MIKROTIK_ARRIVAL, "link-login-only": "https://evil.example/", "link-login": ""})
    refused = connect(http, url, landing)
    assert refused.status_code == 403 and "Location" not in refused.headers
    assert "registered router" in refused.text
    # An unknown CoovaChilli gateway gets no fleet password, at any address.
    for uamip in ("evil.example", "10.1.0.1"):
        landing = http.get(f"{url}/hotspot/coovachilli", timeout=5,
                           params={"res": "notyet", "uamip": uamip, "uamport": "3990", "nasid": "zz"})
        answer = connect(http, url, landing)
        assert answer.status_code == 403 and FLEET_PASSWORD not in answer.text + answer.headers.get("Location", "")
    # authmon: the resident's grant is queued; only a poll naming the site's key may fetch it.
    fas_path = f"{url}/hotspot/opennds/BALI-ONDS/{AUTHMON_KEY}"
    landing = http.get(f"{fas_path}?{recording('opennds', 'level2_capture')['query']}", timeout=5)
    assert landing.status_code == 200 and connect(http, url, landing).status_code == 200
    poll = {"auth_get": "list", "gatewayhash": GATEWAY_HASH, "payload": "none"}
    router = {"User-Agent": "openNDS(authmon;NDS:10.1.2;)"}
    for keyless in (f"{url}/hotspot/opennds", f"{url}/gateway/opennds/authmon", f"{url}/hotspot/opennds/BALI-ONDS"):
        answer = requests.post(keyless, data=poll, headers=router, timeout=5)
        assert answer.status_code == 403 and RHID not in answer.text
    listing = requests.post(fas_path, data=poll, headers=router, timeout=5)
    assert listing.status_code == 200 and listing.text.startswith("* " + RHID)
