"""Signed arrivals: only what the signature covers is used, and a replay is refused everywhere."""
from __future__ import annotations

import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import TOKEN, make_config

from .helpers import FASKEY, add_site, replay

PORTAL = "https://portal.test/hotspot/coovachilli"


@pytest.fixture
def app_config(redis, redis_server, tmp_path):
    return make_config(redis_server.url, tmp_path / "var", OPENNDS_FASKEY=FASKEY)


def signed(query: str, secret: str = "secret") -> str:
    return f"{query}&md={hashlib.md5(f'{PORTAL}?{query}{secret}'.encode()).hexdigest().upper()}"


def test_fleet_key_arrival_from_an_unregistered_gateway_cannot_be_replayed(app, resident):
    # level2_capture's gateway is not registered: only the fleet faskey decrypts it.
    first = replay(resident, "opennds", "level2_capture")
    assert first.status_code == 200 and resident.token
    again = replay(resident, "opennds", "level2_capture")
    assert again.status_code == 403 and not resident.token


def test_coovachilli_fields_outside_the_signed_query_are_ignored(app, redis, resident):
    add_site(app, redis, site_id="BALI-COOVA", vendor="coovachilli", gateway_id="fonlo",
             settings={"username": "guest"}, secrets={"uamsecret": "secret", "password": "hspass"})
    query = signed("res=notyet&uamip=192.168.182.1&uamport=3660&challenge=0123456789abcdef0123456789abcdef"
                   "&mac=5C-1D-D9-20-A0-C1&ip=192.168.182.64&nasid=fonlo")
    # The same signed query, with a continue URL slipped in through the form body.
    response = resident.client.post(f"/hotspot/coovachilli?{query}", base_url="https://portal.test",
                                    data={"userurl": "http://evil.example/phish", "mac": "00:11:22:33:44:55"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "evil.example" not in html
    resident.token = TOKEN.search(html).group(1)
    grant = resident.connect()
    assert grant.status_code == 303
    assert "userurl" not in parse_qs(urlsplit(grant.headers["Location"]).query)
    assert "evil.example" not in grant.headers["Location"]


def test_coovachilli_unsigned_arrival_may_be_reloaded(app, resident):
    # Nothing verifies an unsigned redirect, so its challenge is no nonce: a reload still lands.
    for _ in range(2):
        assert replay(resident, "coovachilli", "notyet_capture_unsigned").status_code == 200
