"""The whole journey over real HTTP: gunicorn on a loopback port, real Redis."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from portal.sites import import_sites, parse_csv
from portal.tracking import normalize
from tests.conftest import MIKROTIK_ARRIVAL, SITES_CSV, tracking_number
from tests.servers import Gunicorn, portal_env


@pytest.fixture
def portal_http(redis, redis_server, tmp_path):
    import_sites(redis, parse_csv(SITES_CSV))
    server = Gunicorn(portal_env(redis_server.url, tmp_path / "var", MIN_FILL_SECONDS=0)).start()
    yield server
    server.stop()


def test_journey_over_http(portal_http, redis):
    http = requests.Session()
    landing = http.post(f"{portal_http.url}/hotspot/mikrotik", data=MIKROTIK_ARRIVAL,
                        headers={"Accept-Language": "en-US,en;q=0.8"}, timeout=5)
    assert landing.status_code == 200
    assert '<html lang="en">' in landing.text
    assert landing.headers["Content-Type"].startswith("text/html")
    token = re.search(r"/p/([^/]+)/connect", landing.text).group(1)

    form = http.get(f"{portal_http.url}/p/{token}/lapor", timeout=5).text
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
    fields.update(kind="aspirasi", category="pendidikan", consent="y",
                  body="Sekolah dasar di desa kami belum punya perpustakaan sama sekali.",
                  incident_date="2026-11-01", desa="Baler Bale Agung", kecamatan="Negara",
                  kabupaten="Kabupaten Jembrana", website="")
    receipt = http.post(f"{portal_http.url}/p/{token}/lapor", data=fields, timeout=5)
    assert receipt.status_code == 200
    number = tracking_number(receipt.text)
    assert normalize(number)

    status = http.get(f"{portal_http.url}/status/{number}", timeout=5)
    assert status.status_code == 200 and number in status.text

    grant = http.post(f"{portal_http.url}/p/{token}/connect", allow_redirects=False, timeout=5)
    assert grant.status_code == 303
    query = parse_qs(urlsplit(grant.headers["Location"]).query)
    assert query["username"] == ["T-70:8A:09:65:4D:EC"]


def test_a_kept_alive_connection_is_closed_after_its_share_of_requests(redis, redis_server, tmp_path):
    """deploy/gunicorn.conf.py: a connection serves KEEPALIVE_REQUESTS requests, then opens anew on a free worker."""
    import http.client

    server = Gunicorn(dict(portal_env(redis_server.url, tmp_path / "var"), PORTAL_KEEPALIVE_REQUESTS="3")).start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        answers = []
        for _ in range(3):
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            response.read()
            answers.append((response.status, response.getheader("Connection")))
        assert answers == [(200, "keep-alive"), (200, "keep-alive"), (200, "close")]
        assert response.will_close
        connection.close()
    finally:
        server.stop()
