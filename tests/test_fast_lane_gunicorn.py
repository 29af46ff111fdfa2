"""Issue 14 under real gunicorn: two worker processes keep copies, and a change through one is seen by both.

Each worker keeps the sessions and complaint records its lane read (portal/tracked_cache.py).
A language switch served by one worker, a status set by staff straight in Redis and an erased
session must show on the very next page from either worker, with no pause in between.
"""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import requests

from portal import sessions
from portal.complaints import store
from portal.sites import import_sites, parse_csv
from portal.tracking import normalize
from tests.conftest import MIKROTIK_ARRIVAL, SITES_CSV, TOKEN, Resident, client_for_url, tracking_number
from tests.servers import Gunicorn, portal_env


def _listeners(redis) -> set[str]:
    """Ids of the clients that have Redis track keys for them (each worker's cache listener)."""
    return {client["id"] for client in redis.client_list() if "t" in client["flags"]}


def _get(url: str) -> requests.Response:
    # A new connection each time, so both workers take their share of the requests.
    return requests.get(url, timeout=30, headers={"Connection": "close"})


def test_a_change_through_one_worker_is_seen_at_once_by_the_other(own_redis, tmp_path):
    # A single Redis of the test's own: the lane stands aside on a Cluster (the cluster CI pass).
    redis = client_for_url(own_redis.url)
    import_sites(redis, parse_csv(SITES_CSV))
    before = _listeners(redis)
    server = Gunicorn(portal_env(own_redis.url, tmp_path / "var", MIN_FILL_SECONDS=0), workers=2).start()
    try:
        arrival = requests.post(f"{server.url}/hotspot/mikrotik", data=MIKROTIK_ARRIVAL, timeout=30)
        token = TOKEN.search(arrival.text).group(1)
        form = _get(f"{server.url}/p/{token}/lapor").text
        fields = dict(re.findall(r'name="(started|fb)" value="([^"]*)"', form))
        complaint = Resident(None).complaint(**fields)
        receipt = requests.post(f"{server.url}/p/{token}/lapor", data=complaint, timeout=30)
        number = tracking_number(receipt.text)
        def visit(_):
            assert 'lang="id"' in _get(f"{server.url}/p/{token}").text
            assert _get(f"{server.url}/status/{number}").status_code == 200

        # Both workers read the session and the record, and keep them. Which worker accepts a new
        # connection is the kernel's choice, and it may hand a run of them to the same one: visit
        # two at a time until each worker listens for changes (a few rounds, as a rule).
        with ThreadPoolExecutor(2) as pool:
            for _ in range(60):
                list(pool.map(visit, range(8)))
                if len(_listeners(redis) - before) == 2:
                    break
        assert len(_listeners(redis) - before) == 2  # each worker listens for changes

        assert 'lang="en"' in _get(f"{server.url}/p/{token}?lang=en").text  # a session write, one worker
        pages = [_get(f"{server.url}/p/{token}").text for _ in range(16)]
        assert all('lang="en"' in page for page in pages)

        shown = _get(f"{server.url}/status/{number}").text
        redis.hset(store.record_key("51", normalize(number)), "status", "rejected")  # as staff would
        changed = [_get(f"{server.url}/status/{number}").text for _ in range(16)]
        assert all(page != shown for page in changed) and len(set(changed)) == 1

        redis.delete(sessions.token_keys(b"test-secret", token)[0])  # erased (or expired)
        assert {_get(f"{server.url}/p/{token}").status_code for _ in range(16)} == {410}
        assert "Traceback" not in server.log_text()
    finally:
        server.stop()
