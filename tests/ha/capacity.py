"""Figures for the README's capacity note, measured here (not a test).

- Redis memory per 100,000 sessions: ``used_memory`` before and after storing 100,000 sessions
  the way an arrival does (portal.sessions.save: sealed JSON under ``portal:sess:<id>``, TTL),
  on a scratch Redis.
- Requests per node (wrk): arrivals (POST /hotspot/mikrotik: site lookup, session write, landing
  page) through nginx to one node, 2 threads × 50 connections, 10 s after a 3 s warm-up.
- Requests per node (phones): the resident journey (arrival, form, complaint, grant) from PHONES threads
  without pauses for SECONDS, through nginx to ONE portal node (gunicorn, 2 workers × 4 threads)
  on Sentinel, load generator on the same cores. Journey requests, so Redis writes and an fsync'd
  complaint are in the mix.

    .venv/bin/python -m tests.ha.capacity [sessions|node]
"""
from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests


def session_memory(count: int = 100_000) -> float:
    from portal import create_app
    from portal.embedded_redis import EmbeddedRedis
    from portal import sessions
    from tests.conftest import make_config

    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis", fsync="no").start()
        try:
            app = create_app(make_config(server.url, Path(tmp) / "var"))
            client = app.extensions["portal_redis"][0]
            before = client.info("memory")["used_memory"]
            with app.app_context():
                arrival = _arrival()
                with client.pipeline(transaction=False) as pipe:
                    for n in range(count):
                        session = sessions.PortalSession(token=sessions.new_token(), arrival=arrival, site_id="BALI-0001",
                                                         lang="id", device="d" * 22, campaign="lapor-2026")
                        sessions.save(session, pipe=pipe)
                        if n % 1000 == 999:
                            pipe.execute()
                    pipe.execute()
            after = client.info("memory")["used_memory"]
            assert client.dbsize() == count
        finally:
            server.stop()
    return after - before


def _arrival():
    from hotspot_hooks import Arrival

    return Arrival(vendor="mikrotik", gateway_id="hs-5101011006-1", client_mac="70:8A:09:65:4D:EC",
                   client_ip="10.5.50.253", original_url="http://example.com/",
                   extra={"link-login-only": "http://10.5.50.1/login", "chap-id": "", "chap-challenge": ""})


def node_rate(phones: int = 16, seconds: float = 20.0) -> tuple[float, int, int]:
    from portal.ha_local import Layout
    from tests.conftest import SITES_CSV
    from tests.ha.failover import Run

    work = Path(tempfile.mkdtemp(prefix="portal-capacity-"))
    run = Run.__new__(Run)  # the failover harness's phones, without its faults
    Run.__init__(run, work)
    run.layout = Layout(work, nodes=1, env=run.layout.extra_env, delivery=run.layout.delivery)
    try:
        run.layout.start(SITES_CSV)
        run.load_began = time.monotonic()
        threads = [threading.Thread(target=_phone, args=(run, n, phones)) for n in range(phones)]
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        run.stop_load.set()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - run.load_began
        failed = sum(1 for _, _, ok in run.books.requests if not ok)
        return len(run.books.requests) / elapsed, len(run.books.requests), failed
    finally:
        run.layout.stop()
        run.receiver.stop()


def wrk_landing(seconds: int = 10) -> str:
    """wrk (2 threads, 50 connections) on the arrival POST through nginx to one node on Sentinel."""
    import shutil
    import subprocess
    from urllib.parse import urlencode

    from portal.ha_local import Layout
    from tests.conftest import MIKROTIK_ARRIVAL, SITES_CSV

    work = Path(tempfile.mkdtemp(prefix="portal-capacity-"))
    env = {"PORTAL_REQUEST_LIMIT": "0", "PORTAL_SITE_REQUEST_LIMIT": "0"}
    layout = Layout(work, nodes=1, env=env)
    script = work / "arrival.lua"
    body = urlencode(MIKROTIK_ARRIVAL)
    script.write_text(f'wrk.method = "POST"\nwrk.body = "{body}"\n'
                      'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n')
    try:
        layout.start(SITES_CSV)
        check = requests.post(layout.url + "/hotspot/mikrotik", data=MIKROTIK_ARRIVAL, timeout=5)
        assert check.status_code == 200 and "/connect" in check.text, check.status_code
        subprocess.run([shutil.which("wrk"), "-t2", "-c50", "-d3s", "-s", str(script), layout.url + "/hotspot/mikrotik"],
                       capture_output=True, timeout=60)  # warm-up
        out = subprocess.run([shutil.which("wrk"), "-t2", "-c50", f"-d{seconds}s", "--latency", "-s", str(script),
                              layout.url + "/hotspot/mikrotik"], capture_output=True, text=True, timeout=120).stdout
        return out
    finally:
        layout.stop()
        shutil.rmtree(work, ignore_errors=True)


def _phone(run, number: int, phones: int) -> None:
    index = number
    while not run.stop_load.is_set():
        run.journey(index)
        index += phones


def main() -> int:
    what = sys.argv[1:] or ["sessions", "node", "wrk"]
    if "sessions" in what:
        used = session_memory()
        print(f"Redis memory per 100,000 sessions: {used / 1e6:.1f} MB ({used / 100_000:.0f} B each)")
    if "node" in what:
        rate, total, failed = node_rate()
        print(f"one node: {rate:.0f} journey requests/s ({total} requests, {failed} failed), "
              f"{os.cpu_count()} shared cores, load generator on the same machine")
    if "wrk" in what:
        out = wrk_landing()
        rate = [line for line in out.splitlines() if "Requests/sec" in line or "99%" in line or "Non-2xx" in line]
        print("one node, arrivals (landing page, session write) with wrk through nginx: " + "; ".join(r.strip() for r in rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
