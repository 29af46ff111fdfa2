"""`make bench`: every resident page under load on loopback, as a ratio of a bare Flask floor.

Two servers run side by side on the same gunicorn settings (deploy/gunicorn.conf.py:
workers = cores, the worker class under test): the portal, against a scratch Redis
configured as production (AOF, ``appendfsync everysec``, the complaint journal) with all
2,303 demo sites, and ``tests/bench/floor_app.py``, a Flask app that returns "ok" (the
framework's floor, measured with the same worker class in the same run: docs/performance.md).

The load generator is wrk (Debian package ``wrk``; `make bench` installs it like
.ci/system-packages does): a C event loop that costs far less CPU per request than a
Python generator would, which matters when it shares the two cores with the servers.
2 threads, 50 connections, a warm-up of every target, then passes in which the targets
are rotated so drift hits all of them. Each target is checked for its status and a marker
in its body before it is timed, and a run with non-expected statuses is reported as such.

Targets (TARGETS; add one with a name, a request list and a check):
  floor       GET  /                   (bare Flask)
  landing     POST /hotspot/mikrotik   arrival at one of the 1,581 MikroTik demo sites: site, session, page
  landing_get GET  /p/<token>          the landing again (language switch, back link)
  form        GET  /p/<token>/lapor    the complaint form
  complaint   POST /p/<token>/lapor    a new complaint each time: validation, sealing, journal, Lua write
  receipt     POST /p/<token>/lapor    a form sent again: the stored complaint's receipt
  status      GET  /status/<number>    one HGETALL
  connect     POST /p/<token>/connect  session load, grant count, 303 to the router (the 303 is the point)

Scenarios (SCENARIOS; ``--scenario``) say what the registry holds: "demo" is the 2,303 sites,
"sites100k" adds synthetic MikroTik sites up to 100,000 (arrivals then sample 4,096 of them).
``--only landing`` times the floor and the named targets only.

Prints, per target: req/s median (min-max over passes), its ratio to the floor of the same
pass (median, min-max), p50 and p99 of the median pass, and the issue's targets: every page
>= 0.75 of the floor, p99 within 2x the floor's p99, the complaint POST >= 0.5.
A benchmark, not a test: it never fails CI.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlencode

import redis
import requests
from cryptography.fernet import Fernet
from flask import Flask

from portal.complaints import service
from portal.embedded_redis import EmbeddedRedis
from portal.sites import import_sites, parse_csv
from tests.conftest import DEMO_CSV, MIKROTIK_ARRIVAL
from tests.servers import Gunicorn

SECRET = "bench"
# One request list per target: "METHOD path body" lines. Threads take every other line and
# the harness starts each run where the last one stopped, so a complaint is never sent twice.
LUA = """
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
function init(args)
  methods, paths, bodies = {}, {}, {}
  for line in io.lines(args[1]) do
    local m, p, b = line:match("^(%S+) (%S+) ?(.*)$")
    methods[#methods + 1] = m; paths[#paths + 1] = p; bodies[#bodies + 1] = b ~= "" and b or nil
  end
  step = tonumber(args[3])
  i = tonumber(args[2]) + tid
end
function request()
  local k = i % #paths + 1
  i = i + step
  return wrk.format(methods[k], paths[k], nil, bodies[k])
end
"""
THREADS = 2


@dataclass
class Target:
    """One timed row: a request list and what its answers must look like."""

    name: str
    server: str              # "portal" or "floor"
    lines: list[str]         # "METHOD path body"
    status: int
    marker: str              # in the body of a good answer ("" for a redirect)
    consumes: bool = False   # each line may be sent once (a new complaint)


@dataclass
class Journey:
    """Sessions, forms and stored complaints opened before the timed runs."""

    arrivals: list[str]
    tokens: list[str]
    new_complaints: list[str]
    sent_complaints: list[str]
    numbers: list[str]


def parse_wrk(output: str) -> dict:
    """Requests/s, p50 and p99 (ms), requests, non-2xx/3xx count and socket errors from wrk --latency."""
    def ms(percentile: str) -> float:
        found = re.search(r"\b" + percentile + r"%\s+([\d.]+)(us|ms|s|m)\b", output)
        if not found:  # wrk prints no distribution when nothing completed
            return float("nan")
        value, unit = found.groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    total = int(re.search(r"(\d+) requests in", output).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {"rps": rps, "p50": ms("50"), "p99": ms("99"), "requests": total, "bad": int(bad.group(1)) if bad else 0,
            "errors": sum(map(int, errors.groups())) if errors else 0}


def wrk(url: str, script: Path, lines: Path, offset: int, seconds: int, connections: int) -> dict:
    """One wrk run of *lines* from *offset*."""
    args = ["wrk", f"-t{THREADS}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s",
            "-s", str(script), url, "--", str(lines), str(offset), str(THREADS)]
    result = subprocess.run(args, capture_output=True, text=True, check=True)
    if os.environ.get("BENCH_DEBUG"):
        print(result.stdout, result.stderr)
    return parse_wrk(result.stdout)


def mint_stamps(count: int) -> list[str]:
    """Form stamps as the portal signs them (same secret), without a request each."""
    signer = Flask("bench-stamps")
    signer.config["SECRET_KEY"] = SECRET
    with signer.app_context():
        return [service.new_form_stamp() for _ in range(count)]


def complaint_body(stamp: str) -> str:
    return urlencode({
        "kind": "pengaduan", "category": "kesehatan", "consent": "y", "started": stamp,
        "body": "Antrean di puskesmas sangat panjang dan loket baru buka jam sembilan.",
        "incident_date": "2026-11-20", "desa": "Baler Bale Agung", "kecamatan": "Negara",
        "kabupaten": "Kabupaten Jembrana", "website": "",
    })


def arrival_bodies(sites_csv: str, count: int) -> list[str]:
    """MikroTik arrivals spread over every MikroTik site of the registry, each from its own device."""
    gateways = [row.split(",")[-1] for row in sites_csv.splitlines()[1:] if row.split(",")[-2] == "mikrotik"]
    random.Random(count).shuffle(gateways)  # a large registry: a sample of all its sites, not its first rows
    bodies = []
    for n in range(count):
        mac = f"02:00:00:{n >> 16 & 255:02X}:{n >> 8 & 255:02X}:{n & 255:02X}"
        bodies.append(urlencode(dict(MIKROTIK_ARRIVAL, identity=gateways[n % len(gateways)], mac=mac)))
    return bodies


def open_journey(url: str, sites_csv: str, *, sessions: int, complaints: int) -> Journey:
    """Open sessions over HTTP and store a few complaints; mint the forms the timed runs send."""
    http = requests.Session()
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    arrivals = arrival_bodies(sites_csv, 4096)
    tokens = []
    for body in arrivals[:sessions]:
        page = http.post(url + "/hotspot/mikrotik", data=body, headers=form_type, timeout=10).text
        tokens.append(re.search(r"/p/([^/\"]+)/connect", page).group(1))
    sent, numbers = [], []
    for token, stamp in zip(tokens[:50], mint_stamps(50)):
        line = f"POST /p/{token}/lapor {complaint_body(stamp)}"
        answer = http.post(url + f"/p/{token}/lapor", data=line.split(" ", 2)[2], headers=form_type, timeout=10)
        numbers.append(re.search(r'id="tracking-number">([^<]+)<', answer.text).group(1))
        sent.append(line)
    rng = random.Random(14)
    new = [f"POST /p/{rng.choice(tokens)}/lapor {complaint_body(stamp)}" for stamp in mint_stamps(complaints)]
    return Journey(arrivals=arrivals, tokens=tokens, new_complaints=new, sent_complaints=sent, numbers=numbers)


def targets_for(journey: Journey) -> list[Target]:
    """The timed rows (the list the issue asks for; extend it here)."""
    tokens = journey.tokens
    return [
        Target("floor", "floor", ["GET /"], 200, "ok"),
        Target("landing", "portal", [f"POST /hotspot/mikrotik {body}" for body in journey.arrivals], 200,
               "SP4N LAPOR!"),
        Target("landing_get", "portal", [f"GET /p/{t}" for t in tokens], 200, "SP4N LAPOR!"),
        Target("form", "portal", [f"GET /p/{t}/lapor" for t in tokens], 200, 'name="started"'),
        Target("complaint", "portal", journey.new_complaints, 200, 'id="tracking-number"', consumes=True),
        Target("receipt", "portal", journey.sent_complaints, 200, 'id="tracking-number"'),
        Target("status", "portal", [f"GET /status/{n}" for n in journey.numbers], 200, 'class="steps"'),
        Target("connect", "portal", [f"POST /p/{t}/connect lang=id" for t in tokens], 303, ""),
    ]


def check(base: str, target: Target) -> None:
    """One request of *target* (its last line, never timed) must answer as expected."""
    method, path, *body = target.lines[-1].split(" ", 2)
    answer = requests.request(method, base + path, data=body[0] if body else None, allow_redirects=False,
                              headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
    if answer.status_code != target.status or target.marker not in answer.text:
        raise SystemExit(f"bench: {target.name} answered {answer.status_code}, not {target.status} "
                         f"with {target.marker!r}: {answer.text[:300]!r}")
    if target.consumes:
        target.lines.pop()


def seed_demo(client: redis.Redis) -> str:
    """The 2,303 demo sites (tests/data/sites_demo.csv)."""
    text = DEMO_CSV.read_text(encoding="utf-8")
    import_sites(client, parse_csv(text))
    return text


def seed_many(count: int) -> Callable[[redis.Redis], str]:
    """The demo sites plus synthetic MikroTik ones (copies of demo rows, own ids), *count* in all."""
    def seed(client: redis.Redis) -> str:
        lines = DEMO_CSV.read_text(encoding="utf-8").splitlines()
        header, rows = lines[0], lines[1:]
        extra = []
        for n in range(count - len(rows)):
            fields = rows[n % len(rows)].split(",")
            fields[0], fields[-2], fields[-1] = f"BALI-S{n:06d}", "mikrotik", f"hs-synth-{n:06d}"
            extra.append(",".join(fields))
        text = "\n".join([header, *rows, *extra]) + "\n"
        import_sites(client, parse_csv(text))
        return text
    return seed


#: What the registry holds for a run: name -> seed(client) returning the sites CSV it loaded.
SCENARIOS: dict[str, Callable[[redis.Redis], str]] = {"demo": seed_demo, "sites100k": seed_many(100_000)}


def bench(worker_class: str, *, scenario: str, passes: int, seconds: int, connections: int,
          sessions: int, only: frozenset = frozenset(), verbose: bool = False) -> dict[str, list[dict]]:
    """Run every target *passes* times, rotated; return the wrk results per target."""
    work = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    store = EmbeddedRedis(work / "redis").start()
    sites_csv = SCENARIOS[scenario](redis.Redis.from_url(store.url))
    workers = os.cpu_count() or 2
    portal = Gunicorn({
        "PORTAL_REDIS_URL": store.url,
        "PORTAL_SECRET_KEY": SECRET, "PORTAL_DEVICE_KEY": SECRET,
        "PORTAL_DATA_KEYS": Fernet.generate_key().decode(),
        "PORTAL_VAR_DIR": str(work / "var"),
        "PORTAL_MIN_FILL_SECONDS": "0",
        "PORTAL_DEVICE_LIMIT": "1000000000", "PORTAL_SITE_LIMIT": "1000000000",
        # wrk is one client at one address: the per-client limits would refuse it, not measure it.
        "PORTAL_REQUEST_LIMIT": "1000000000", "PORTAL_SITE_REQUEST_LIMIT": "1000000000",
        "PORTAL_STATUS_LIMIT": "1000000000",
        "PORTAL_SESSION_TTL": "7200",
    }, workers=workers, worker_class=worker_class).start()
    floor = Gunicorn({}, workers=workers, worker_class=worker_class, app="tests.bench.floor_app:app").start()
    try:
        # Enough new complaints for every run of the complaint row at a generous rate.
        journey = open_journey(portal.url, sites_csv, sessions=sessions,
                               complaints=(passes + 1) * seconds * 1200 + 5000)
        targets = [t for t in targets_for(journey) if not only or t.name in only or t.name == "floor"]
        script = work / "bench.lua"
        script.write_text(LUA)
        bases = {"portal": portal.url, "floor": floor.url}
        files, offsets = {}, {}
        for target in targets:
            check(bases[target.server], target)
            files[target.name] = work / f"{target.name}.txt"
            files[target.name].write_text("\n".join(target.lines) + "\n")
            offsets[target.name] = 0
        results: dict[str, list[dict]] = {target.name: [] for target in targets}

        def run(target: Target, length: int) -> dict:
            result = wrk(bases[target.server] + "/", script, files[target.name], offsets[target.name], length,
                         connections)
            offsets[target.name] += result["requests"] + connections * THREADS  # in flight at the end too
            if target.consumes and offsets[target.name] >= len(target.lines):
                print(f"bench: {target.name} ran out of fresh requests; raise --complaints", file=sys.stderr)
            return result

        for target in targets:  # warm-up: caches filled, workers' imports done
            run(target, 3)
        for n in range(passes):
            shift = n % len(targets)
            for target in targets[shift:] + targets[:shift]:
                result = run(target, seconds)
                result["pass"] = n
                results[target.name].append(result)
                if verbose:  # each run as it ends, in the order run: what a slow pass followed
                    print(f"{time.strftime('%H:%M:%S')} pass {n} {target.name:<12} {result['rps']:>7.0f} req/s  p99 {result['p99']:.1f} ms",
                          flush=True)
        return results
    finally:
        report_log(portal.log_text())
        portal.stop()
        floor.stop()
        store.stop()
        shutil.rmtree(work, ignore_errors=True)


def report_log(text: str) -> None:
    """Say what the portal logged above INFO during the run (a run that degraded says why here)."""
    import json
    from collections import Counter

    seen: Counter = Counter()
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") not in (None, "DEBUG", "INFO"):
            seen[f"{entry['level']} {entry.get('logger', '')}: {str(entry.get('message', ''))[:120]}"] += 1
    if seen:
        print("bench: the portal logged:", file=sys.stderr)
        for message, count in seen.most_common(12):
            print(f"  {count:>6} x {message}", file=sys.stderr)


def summarize(results: dict[str, list[dict]]) -> dict[str, dict]:
    """Median req/s with min-max, the ratio to the floor of the same pass, p50/p99 of the median pass."""
    floors = {r["pass"]: r for r in results["floor"]}
    rows = {}
    for name, runs in results.items():
        ordered = sorted(runs, key=lambda r: r["rps"])
        mid = ordered[len(ordered) // 2]
        ratios = sorted(r["rps"] / floors[r["pass"]]["rps"] for r in runs)
        p99_ratios = sorted(r["p99"] / floors[r["pass"]]["p99"] for r in runs)
        rows[name] = {
            "rps": mid["rps"], "rps_min": ordered[0]["rps"], "rps_max": ordered[-1]["rps"],
            "ratio": statistics.median(ratios), "ratio_min": ratios[0], "ratio_max": ratios[-1],
            "p50": statistics.median(r["p50"] for r in runs), "p99": statistics.median(r["p99"] for r in runs),
            "p99_ratio": statistics.median(p99_ratios),
            "bad": sum(r["bad"] + r["errors"] for r in runs),
        }
    return rows


EXPECTED_3XX = {"connect"}  # wrk counts only >= 400 as bad, so a 3xx row is wrong unless listed here


def report(worker_class: str, rows: dict[str, dict], *, passes: int, seconds: int, connections: int,
           scenario: str) -> None:
    print(f"\n== gunicorn {worker_class} x {os.cpu_count()}, Redis appendfsync everysec + complaint journal, "
          f"scenario {scenario}, {connections} connections, {passes} interleaved passes of {seconds} s")
    print(f"{'target':<12} {'req/s':>7} {'(min-max)':>13}  {'/ floor':>7} {'(min-max)':>11}  "
          f"{'p50 ms':>7} {'p99 ms':>7} {'p99/floor':>9}  {'bad':>4}  targets")
    for name, row in rows.items():
        verdict = ""
        if name != "floor":
            need = 0.5 if name == "complaint" else 0.75
            verdict = (f"ratio >= {need}: {'met' if row['ratio'] >= need else 'NOT met'}; "
                       f"p99 <= 2x: {'met' if row['p99_ratio'] <= 2 else 'NOT met'}")
        print(f"{name:<12} {row['rps']:>7.0f} {row['rps_min']:>6.0f}-{row['rps_max']:<6.0f}  {row['ratio']:>7.2f} "
              f"{row['ratio_min']:>5.2f}-{row['ratio_max']:<5.2f}  {row['p50']:>7.2f} {row['p99']:>7.1f} "
              f"{row['p99_ratio']:>9.2f}  {row['bad']:>4}  {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", default=os.environ.get("PORTAL_WORKER_CLASS", "gthread"),
                        help="comma-separated gunicorn worker classes to compare (sync,gthread)")
    parser.add_argument("--scenario", default="demo", choices=sorted(SCENARIOS))
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--sessions", type=int, default=400, help="distinct sessions for the session pages")
    parser.add_argument("--only", default="", help="comma-separated targets to time (the floor always runs)")
    parser.add_argument("--verbose", action="store_true", help="print each run as it ends")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("make bench needs wrk: apt-get install --no-install-recommends wrk", file=sys.stderr)
        return 2
    for worker_class in args.classes.split(","):
        results = bench(worker_class, scenario=args.scenario, passes=args.passes, seconds=args.seconds,
                        connections=args.connections, sessions=args.sessions,
                        only=frozenset(filter(None, args.only.split(","))), verbose=args.verbose)
        report(worker_class, summarize(results), passes=args.passes, seconds=args.seconds,
               connections=args.connections, scenario=args.scenario)
    return 0


if __name__ == "__main__":
    sys.exit(main())
