"""After a Redis restart the web tier writes to Redis again at once, not to the spool."""
from __future__ import annotations

import os

import redis as redis_py

from portal import create_app
from portal.complaints import store
from portal.embedded_redis import EmbeddedRedis
from portal.sites import import_sites, parse_csv
from tests.conftest import SITES_CSV, Resident, make_config


def test_pooled_connections_recover_after_a_restart(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis", binary=os.environ.get("PORTAL_TEST_REDIS_BINARY")).start()
    try:
        app = create_app(make_config(server.url, tmp_path / "var", REDIS_RETRY_AFTER=0.0))
        import_sites(redis_py.Redis.from_url(server.url), parse_csv(SITES_CSV))
        residents = [Resident(app.test_client()) for _ in range(3)]
        for resident in residents:
            resident.arrive()
        forms = [resident.complaint() for resident in residents]  # pooled connections now open
        server.stop(kill=True)
        server.start()
        for resident, fields in zip(residents, forms):
            assert resident.client.post(f"/p/{resident.token}/lapor", data=fields).status_code == 200
        assert redis_py.Redis.from_url(server.url).xlen(store.stream_key("51")) == 3
        assert not app.extensions["portal_spool"].pending()  # every complaint went straight to Redis
    finally:
        server.stop()


def test_breaker_closes_under_steady_traffic(tmp_path):
    """Requests that meet the open breaker must not keep it open after Redis is back."""
    import time

    server = EmbeddedRedis(tmp_path / "redis", binary=os.environ.get("PORTAL_TEST_REDIS_BINARY")).start()
    try:
        app = create_app(make_config(server.url, tmp_path / "var", REDIS_RETRY_AFTER=0.5))
        import_sites(redis_py.Redis.from_url(server.url), parse_csv(SITES_CSV))
        resident = Resident(app.test_client())
        server.stop()
        resident.arrive()  # trips the breaker
        server.start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # steady traffic, each request meeting the breaker
            resident.arrive()
            if not resident.token.startswith("x."):
                break
            time.sleep(0.05)
        assert not resident.token.startswith("x."), "the portal never went back to Redis"
    finally:
        server.stop()
