"""`make bench`: the resident journey under load on loopback, next to the framework's floor.

Runs gunicorn (deploy/gunicorn.conf.py, workers = cores) against a scratch Redis
with AOF ``appendfsync always`` (as in production), and loads it with wrk
(Debian package ``wrk``): 2 threads, 50 connections, a warm-up, then timed
runs. Every target is checked for its expected status and page marker before
it is timed, and targets are rotated within each pass so drift hits all of
them (docs/performance.md, "Measuring well").

Targets:
  floor     GET /healthz               trivial endpoint of the same app and server
  landing   POST /hotspot/mikrotik     arrival: site lookup, session, impression, page
  complaint POST /p/<token>/lapor      validation, sealing, Lua write to record + stream
  grant     POST /p/<token>/connect    session load, grant event, 303 to the router

Prints req/s (median, min–max over passes) and p50/p99 latency of the median
pass, the landing/floor ratio, and whether the targets (landing >= 75% of the
floor, landing p99 < 25 ms) were met. A benchmark, not a test: it never fails CI.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

import redis
import requests
from cryptography.fernet import Fernet

from portal.embedded_redis import EmbeddedRedis
from portal.sites import import_sites, parse_csv
from tests.conftest import DEMO_CSV, MIKROTIK_ARRIVAL
from tests.servers import Gunicorn

LUA_POST = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local bodies = {}
for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
local i = 0
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, "%(path)s" ~= "" and "%(path)s" or nil, nil, bodies[i])
end
"""
LUA_PATHS = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local paths, bodies = {}, {}
for line in io.lines("%(lines)s") do
  local p, b = line:match("^(%%S+) (.*)$")
  paths[#paths + 1] = p; bodies[#bodies + 1] = b
end
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format(nil, paths[i], nil, bodies[i])
end
"""


def parse_wrk(output: str) -> dict:
    """Requests/s, p50 and p99 (ms), non-2xx/3xx count and socket errors from wrk --latency."""
    def ms(percentile: str) -> float:
        found = re.search(percentile + r"%\s+([\d.]+)(us|ms|s|m)\b", output)
        if not found:  # wrk prints no distribution when nothing completed
            return float("nan")
        value, unit = found.groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p50, p99 = ms("50"), ms("99")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {"rps": rps, "p50": p50, "p99": p99, "bad": int(bad.group(1)) if bad else 0,
            "errors": sum(map(int, errors.groups())) if errors else 0}


def wrk(url: str, script: Path | None, seconds: int, connections: int) -> dict:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if script:
        args += ["-s", str(script)]
    result = subprocess.run(args + [url], capture_output=True, text=True, check=True)
    if os.environ.get("BENCH_DEBUG"):
        print(result.stdout, result.stderr)
    return parse_wrk(result.stdout)


def prepare(server: Gunicorn, work: Path, count: int) -> dict[str, tuple[str, Path | None]]:
    """Open sessions and form stamps ahead of the timed runs; check each target answers as expected."""
    http = requests.Session()
    arrival = urlencode(MIKROTIK_ARRIVAL)
    page = http.post(server.url + "/hotspot/mikrotik", data=MIKROTIK_ARRIVAL, timeout=5)
    assert page.status_code == 200 and "SP4N LAPOR!" in page.text, "landing check failed"
    (work / "arrival.txt").write_text(arrival + "\n")

    complaint_lines, grant_lines = [], []
    for n in range(count):
        data = dict(MIKROTIK_ARRIVAL, mac=f"02:00:00:{n >> 16 & 255:02X}:{n >> 8 & 255:02X}:{n & 255:02X}")
        landing = http.post(server.url + "/hotspot/mikrotik", data=data, timeout=5).text
        token = re.search(r"/p/([^/\"]+)/connect", landing).group(1)
        form = http.get(f"{server.url}/p/{token}/lapor", timeout=5).text
        started = re.search(r'name="started" value="([^"]+)"', form).group(1)
        body = urlencode({
            "kind": "pengaduan", "category": "kesehatan", "consent": "y", "started": started,
            "body": "Antrean di puskesmas sangat panjang dan loket baru buka jam sembilan.",
            "incident_date": "2026-11-20", "desa": "Baler Bale Agung", "kecamatan": "Negara",
            "kabupaten": "Kabupaten Jembrana", "website": "",
        })
        complaint_lines.append(f"/p/{token}/lapor {body}")
        grant_lines.append(f"/p/{token}/connect lang=id")
    check = http.post(server.url + complaint_lines[0].split(" ")[0], data=complaint_lines[0].split(" ", 1)[1],
                      headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=5)
    assert check.status_code == 200 and 'id="tracking-number"' in check.text, "complaint check failed"
    grant = http.post(server.url + grant_lines[0].split(" ")[0], data="lang=id", allow_redirects=False,
                      headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=5)
    assert grant.status_code == 303, "grant check failed"

    (work / "complaints.txt").write_text("\n".join(complaint_lines) + "\n")
    (work / "grants.txt").write_text("\n".join(grant_lines) + "\n")
    scripts = {
        "landing": LUA_POST % {"bodies": work / "arrival.txt", "path": ""},
        "complaint": LUA_PATHS % {"lines": work / "complaints.txt"},
        "grant": LUA_PATHS % {"lines": work / "grants.txt"},
    }
    targets: dict[str, tuple[str, Path | None]] = {"floor": (server.url + "/healthz", None)}
    for name, lua in scripts.items():
        path = work / f"{name}.lua"
        path.write_text(lua)
        url = server.url + ("/hotspot/mikrotik" if name == "landing" else "/")
        targets[name] = (url, path)
    return targets


def bench(worker_class: str, *, passes: int, seconds: int, connections: int, sessions: int,
          fsync: str = "always") -> dict:
    work = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    store = EmbeddedRedis(work / "redis", fsync=fsync).start()
    client = redis.Redis.from_url(store.url)
    import_sites(client, parse_csv(DEMO_CSV.read_text(encoding="utf-8")))
    server = Gunicorn({
        "PORTAL_REDIS_URL": store.url,
        "PORTAL_SECRET_KEY": "bench", "PORTAL_DEVICE_KEY": "bench",
        "PORTAL_DATA_KEYS": Fernet.generate_key().decode(),
        "PORTAL_VAR_DIR": str(work / "var"),
        "PORTAL_MIN_FILL_SECONDS": "0",
        "PORTAL_DEVICE_LIMIT": "1000000000", "PORTAL_SITE_LIMIT": "1000000000",
        "PORTAL_REQUEST_LIMIT": "0", "PORTAL_SITE_REQUEST_LIMIT": "0", "PORTAL_STATUS_LIMIT": "0",  # wrk is one client
        "PORTAL_SESSION_TTL": "3600",
    }, workers=os.cpu_count() or 2, worker_class=worker_class).start()
    try:
        targets = prepare(server, work, sessions)
        results: dict[str, list[dict]] = {name: [] for name in targets}
        names = list(targets)
        for name in names:  # warm-up
            wrk(targets[name][0], targets[name][1], 3, connections)
        for n in range(passes):
            order = names[n % len(names):] + names[:n % len(names)]
            for name in order:
                results[name].append(wrk(targets[name][0], targets[name][1], seconds, connections))
        return results
    finally:
        server.stop()
        store.stop()
        shutil.rmtree(work, ignore_errors=True)


def report(worker_class: str, results: dict, connections: int, fsync: str) -> None:
    print(f"\n== gunicorn {worker_class}, {os.cpu_count()} workers, appendfsync {fsync}, {connections} connections, "
          f"median of {len(results['floor'])} passes")
    print(f"{'target':<10} {'req/s':>8} {'(min-max)':>15} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    medians = {}
    for name, runs in results.items():
        ordered = sorted(runs, key=lambda r: r["rps"])
        mid = ordered[len(ordered) // 2]
        medians[name] = mid
        errors = sum(r["bad"] + r["errors"] for r in runs)
        print(f"{name:<10} {mid['rps']:>8.0f} {ordered[0]['rps']:>7.0f}-{ordered[-1]['rps']:<7.0f} "
              f"{mid['p50']:>8.2f} {mid['p99']:>8.2f} {errors:>7}")
    ratio = medians["landing"]["rps"] / medians["floor"]["rps"]
    print(f"landing / floor = {ratio:.0%} (target >= 75%): {'met' if ratio >= 0.75 else 'NOT met'}")
    p99 = medians["landing"]["p99"]
    print(f"landing p99 = {p99:.1f} ms (target < 25 ms): {'met' if p99 < 25 else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", default=os.environ.get("PORTAL_WORKER_CLASS", "gthread"),
                        help="comma-separated gunicorn worker classes to compare (sync,gthread,gevent)")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--sessions", type=int, default=2000, help="distinct sessions for complaint/grant")
    parser.add_argument("--fsync", default="always", help="Redis appendfsync policy (production: always)")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("make bench needs wrk: apt-get install wrk", file=sys.stderr)
        return 2
    for worker_class in args.classes.split(","):
        results = bench(worker_class, passes=args.passes, seconds=args.seconds,
                        connections=args.connections, sessions=args.sessions, fsync=args.fsync)
        report(worker_class, results, args.connections, args.fsync)
    return 0


if __name__ == "__main__":
    sys.exit(main())
