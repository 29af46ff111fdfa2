"""Fixtures for RADIUS mode: the portal on a real HTTP port and a real FreeRADIUS asking it.

FreeRADIUS and the HTTP server live for the whole module (starting radiusd per test
would dominate the run); each test swaps in its own app, on the emptied test Redis.
"""
from __future__ import annotations

import re
import threading

import pytest
from werkzeug.serving import make_server

from portal.sites import Site, save_site
from tests.conftest import make_config

from .freeradius import FreeRadius

API_TOKEN = "radius-api-test-token"
MIKROTIK_SITE = "BALI-0001"
COOVA_SITE = "BALI-0009"
COOVA_NAS = "chilli-5101011007"
RADIUS_SETTINGS = {"login_mode": "radius", "minutes": 30, "download_kbps": 2048, "upload_kbps": 512,
                   "quota_mb": 500}
FIELD = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


class Dispatcher:
    """A WSGI app that forwards to whichever portal app the current test installed."""

    def __init__(self):
        self.target = None

    def __call__(self, environ, start_response):
        if self.target is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"no app installed"]
        return self.target(environ, start_response)


@pytest.fixture(scope="module")
def portal_http():
    """The portal served by werkzeug on 127.0.0.1 (threaded: rlm_rest keeps connections open)."""
    dispatcher = Dispatcher()
    server = make_server("127.0.0.1", 0, dispatcher, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    dispatcher.url = f"http://127.0.0.1:{server.server_port}"
    yield dispatcher
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def freeradius(portal_http, tmp_path_factory):
    """Debian's freeradius -f -X with deploy/freeradius, on loopback high ports."""
    server = FreeRadius(tmp_path_factory.mktemp("freeradius"), api_url=portal_http.url, api_token=API_TOKEN)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def app_config(redis, redis_server, tmp_path):
    """The test configuration plus the RADIUS API's shared secret."""
    return make_config(redis_server.url, tmp_path / "var", RADIUS_API_TOKEN=API_TOKEN)


@pytest.fixture
def radius_app(app, redis):
    """The app with BALI-0001 (MikroTik) and a CoovaChilli site in RADIUS login mode."""
    from portal.sites import RECORDS

    mikrotik = Site.from_json(redis.hget(RECORDS, MIKROTIK_SITE))
    save_site(redis, Site(**{**mikrotik.__dict__, "settings": dict(RADIUS_SETTINGS)}))
    save_site(redis, Site(
        site_id=COOVA_SITE, name="Puskesmas Negara", type="puskesmas", kabupaten_kode="51.01",
        kabupaten="Kabupaten Jembrana", kecamatan_kode="51.01.01", kecamatan="Negara",
        desa_kode="51.01.01.1007", desa="Banjar Tengah", gateway_vendor="coovachilli",
        gateway_id=COOVA_NAS, settings={**RADIUS_SETTINGS, "quota_mb": 5000},
    ))
    return app


@pytest.fixture
def radius_stack(radius_app, portal_http, freeradius):
    """FreeRADIUS asking this test's app."""
    portal_http.target = radius_app
    yield freeradius
    portal_http.target = None


def form_fields(html: str) -> dict[str, str]:
    """The hidden fields of the auto-submitting grant form."""
    return dict(FIELD.findall(html))
