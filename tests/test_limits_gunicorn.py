"""The per-client request limit holds without nginx under real gunicorn: two workers share it via Redis."""
from __future__ import annotations

import signal
import time

import psutil
import requests

from portal.sites import import_sites, parse_csv
from tests.conftest import SITES_CSV
from tests.servers import Gunicorn, portal_env

LIMIT = 10


def test_request_limit_is_shared_by_two_workers(redis, redis_server, tmp_path):
    import_sites(redis, parse_csv(SITES_CSV))
    server = Gunicorn(portal_env(redis_server.url, tmp_path / "var", REQUEST_LIMIT=LIMIT), workers=2).start(timeout=60)
    try:
        # A new connection per request, so both workers take their share of them.
        answers = [requests.get(f"{server.url}/status?lang=en", timeout=30) for _ in range(3 * LIMIT)]
        codes = [answer.status_code for answer in answers]
        assert codes.count(200) == LIMIT, codes  # one worker alone could not have counted the other's
        assert codes.count(429) == 2 * LIMIT
        refused = answers[-1]
        assert "Please wait a moment" in refused.text and refused.headers["Retry-After"]
        assert requests.get(f"{server.url}/healthz", timeout=30).status_code == 200

        # Replace both workers (SIGHUP): fresh processes still refuse, the count lives in Redis.
        master = psutil.Process(server.process.pid)
        old = {child.pid for child in master.children()}
        assert len(old) == 2
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = {child.pid for child in master.children()}
            if len(now) == 2 and not now & old:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("gunicorn did not replace its workers")
        assert requests.get(f"{server.url}/status?lang=en", timeout=30).status_code == 429
        assert "Traceback" not in server.log_text()
    finally:
        server.stop()
