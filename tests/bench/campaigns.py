"""`make bench` (campaigns): the landing with 1,000 published campaigns next to the landing with one.

All 2,303 demo sites are registered; arrivals rotate over every MikroTik site of the
demo registry, so each request selects for another place. Campaigns target a mix of
kabupaten, kecamatan, desa, site types and single sites, some with daily hours and a
frequency cap, a few with A/B variants. Two figures per scenario:

- ``select``: microseconds per ``campaign_for`` call in process (the choice alone);
- ``landing``: req/s and p50/p99 of ``POST /hotspot/mikrotik`` through gunicorn and wrk.

Selection looks up a fixed number of index keys per request, so the two scenarios
should be within noise of each other. A benchmark, not a test: it never fails CI.
"""
from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import redis
import requests
from cryptography.fernet import Fernet

from portal import create_app
from portal.campaigns import campaign_for, store
from portal.campaigns.model import blank
from portal.embedded_redis import EmbeddedRedis
from portal.sites import SITE_TYPES, import_sites, parse_csv
from tests.bench.run import LUA, wrk
from tests.conftest import DEMO_CSV, MIKROTIK_ARRIVAL, make_config
from tests.servers import Gunicorn


def demo_rows() -> list[dict]:
    with DEMO_CSV.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def make_campaign(n: int, rows: list[dict], rng: random.Random) -> dict:
    """Campaign *n*: a random target level, priority, and sometimes hours, a cap or variants."""
    row = rng.choice(rows)
    c = blank("51")
    c.update(id=f"bench-{n:04d}", name=f"bench {n}", author="bench", priority=rng.randint(0, 100))
    for lang in ("id", "en", "ban"):
        c["content"]["A"][lang].update(headline=f"Kampanye {n} ({lang})", body=f"Isi kampanye **{n}**.")
        c["content"]["B"][lang].update(headline=f"Kampanye {n}B ({lang})", body=f"Varian B **{n}**.")
    level = rng.random()
    if level < 0.25:
        c["targeting"]["regions"] = [row["kabupaten_kode"]]
    elif level < 0.5:
        c["targeting"]["regions"] = [row["kecamatan_kode"]]
    elif level < 0.75:
        c["targeting"]["regions"] = [row["desa_kode"]]
    elif level < 0.9:
        c["targeting"]["sites"] = [r["site_id"] for r in rng.sample(rows, 3)]
    else:
        c["targeting"]["regions"] = [row["kabupaten_kode"]]
        c["targeting"]["types"] = [rng.choice(SITE_TYPES)]
    if rng.random() < 0.2:
        c["schedule"].update(hours_from="18:00", hours_to="02:00")
    if rng.random() < 0.1:
        c["cap"] = 3
    if rng.random() < 0.1:
        c["weights"] = {"A": 50, "B": 50}
    return c


def publish_many(client, count: int, rows: list[dict]) -> float:
    """Publish *count* campaigns (one snapshot at the end); return the seconds the snapshot took."""
    rng = random.Random(11)
    for n in range(count):
        store.publish(client, "51", make_campaign(n, rows, rng), by="bench", reviewed_by="bench2", rebuild=False)
    started = time.perf_counter()
    store.rebuild_snapshot(client, "51")
    return time.perf_counter() - started


def select_cost(url: str, work: Path, rows: list[dict], calls: int) -> float:
    """Microseconds per campaign_for call, over every demo site in turn."""
    app = create_app(make_config(url, work / "app-var"))
    with app.test_request_context("/"):
        sites = app.extensions["portal_sites"].all(redis.Redis.from_url(url))
        campaign_for(sites[0], "warm")  # loads the snapshot into the index
        started = time.perf_counter()
        for n in range(calls):
            campaign_for(sites[n % len(sites)], f"device{n % 997}")
        return (time.perf_counter() - started) / calls * 1e6


def scenario(count: int, *, seconds: int, connections: int, passes: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="portal-bench-campaigns-"))
    server_redis = EmbeddedRedis(work / "redis", fsync="everysec").start()
    client = redis.Redis.from_url(server_redis.url)
    rows = demo_rows()
    import_sites(client, parse_csv(DEMO_CSV.read_text(encoding="utf-8")))
    snapshot_seconds = publish_many(client, count, rows)
    result = {"campaigns": count, "snapshot_s": snapshot_seconds,
              "snapshot_kb": len(client.get(store.snapshot_keys("51")[0]) or b"") / 1024,
              "select_us": select_cost(server_redis.url, work, rows, 20000)}
    gunicorn = Gunicorn({
        "PORTAL_REDIS_URL": server_redis.url, "PORTAL_SECRET_KEY": "bench", "PORTAL_DEVICE_KEY": "bench",
        "PORTAL_DATA_KEYS": Fernet.generate_key().decode(), "PORTAL_VAR_DIR": str(work / "var"),
        "PORTAL_REQUEST_LIMIT": "0", "PORTAL_SITE_REQUEST_LIMIT": "0",
    }, workers=os.cpu_count() or 2).start()
    try:
        mikrotik = [r for r in rows if r["gateway_vendor"] == "mikrotik"]
        lines = [urlencode(dict(MIKROTIK_ARRIVAL, identity=r["gateway_id"],
                                mac=f"02:00:00:{n >> 16 & 255:02X}:{n >> 8 & 255:02X}:{n & 255:02X}"))
                 for n, r in enumerate(mikrotik)]
        check = requests.post(gunicorn.url + "/hotspot/mikrotik", data=lines[0], timeout=5,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert check.status_code == 200 and 'id="campaign-title"' in check.text, "landing check failed"
        arrivals = work / "arrivals.txt"  # the harness's "METHOD path body" lines (tests/bench/run.py)
        arrivals.write_text("".join(f"POST /hotspot/mikrotik {line}\n" for line in lines))
        script = work / "landing.lua"
        script.write_text(LUA)
        wrk(gunicorn.url + "/", script, arrivals, 0, 3, connections)  # warm-up
        runs = sorted((wrk(gunicorn.url + "/", script, arrivals, 0, seconds, connections) for _ in range(passes)),
                      key=lambda r: r["rps"])
        result["landing"] = runs[len(runs) // 2]
    finally:
        gunicorn.stop()
        server_redis.stop()
        shutil.rmtree(work, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", default="1,1000", help="comma-separated scenario sizes")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("make bench needs wrk: apt-get install wrk", file=sys.stderr)
        return 2
    results = [scenario(int(n), seconds=args.seconds, connections=args.connections, passes=args.passes)
               for n in args.campaigns.split(",")]
    print(f"\n== landing with published campaigns, all {len(demo_rows())} demo sites, median of {args.passes} passes")
    print(f"{'campaigns':>9} {'snapshot':>9} {'size KB':>8} {'select us':>10} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>7}")
    for r in results:
        land = r["landing"]
        print(f"{r['campaigns']:>9} {r['snapshot_s']:>8.2f}s {r['snapshot_kb']:>8.0f} {r['select_us']:>10.1f} "
              f"{land['rps']:>8.0f} {land['p50']:>7.2f} {land['p99']:>7.2f} {land['bad'] + land['errors']:>7}")
    if len(results) > 1:
        ratio = results[-1]["landing"]["rps"] / results[0]["landing"]["rps"]
        print(f"landing with {results[-1]['campaigns']} / with {results[0]['campaigns']} = {ratio:.0%}; "
              f"selection {results[-1]['select_us'] / results[0]['select_us']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
