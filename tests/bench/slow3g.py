"""`python -m tests.bench.slow3g`: the landing page on an emulated Slow 3G phone, next to a FAS-like page.

Headless Debian Chromium (the browser tests' set-up, 360 px) with DevTools emulation:
``Network.emulateNetworkConditions`` (400 ms latency, 50,000 B/s each way: the Slow 3G
figures the issue measured with) and ``Emulation.setCPUThrottlingRate`` 4. Each load is a
fresh browser with its cache off, so the connection is opened under the emulation, as a
phone that has just joined the hotspot does; loads of the two pages alternate.

The stand-in for openNDS's example FAS page is a page written here (not theirs): one HTML
document of the same size class (~6 KB, an inline stylesheet, a heading, a few paragraphs,
one form with a button), served by a plain http.server that gzips text/html for clients that
accept it, as Debian's nginx does by default. Our landing is served as `make run` serves it
(gunicorn, deploy/gunicorn.conf.py, no nginx) at a MikroTik arrival URL (a GET arrival).

Prints the median load time (navigation start to the load event) with min-max, and the
bytes on the wire. A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import gzip
import random
import shutil
import statistics
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import redis
from cryptography.fernet import Fernet

from portal.embedded_redis import EmbeddedRedis
from portal.sites import import_sites, parse_csv
from tests.browser.test_chromium import chromium
from tests.conftest import DEMO_CSV
from tests.servers import Gunicorn

SLOW_3G = {"offline": False, "latency": 400, "downloadThroughput": 50_000, "uploadThroughput": 50_000}
CPU_SLOWDOWN = 4


WORDS = ("hotspot village free internet service please read notice continue accept terms use network "
         "public access community hall health school office minutes session device connect browse safely "
         "report problem help desk open daily morning evening regency district library market temple").split()


def fas_like_page() -> bytes:
    """A captive page of the same size class as openNDS's example FAS page (our own text and style).

    Text and rules vary like a real page's, so it compresses like one (~2.5x), not like a repeat.
    """
    rng = random.Random(7)
    rules = [f".c{n}{{margin:{rng.randint(0, 9)}px {rng.randint(0, 20)}px;padding:.{rng.randint(1, 9)}em;"
             f"color:#{rng.randrange(16**6):06x};background:#{rng.randrange(16**6):06x};"
             f"border-radius:{rng.randint(0, 8)}px;font-size:{rng.randint(80, 140)}%}}" for n in range(24)]
    style = "body{margin:0;font-family:sans-serif;line-height:1.5}" + "".join(rules)
    paragraphs = "\n".join(
        f'<p class="c{n % 24}">' + " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 60))).capitalize()
        + ".</p>" for n in range(9))
    html = f"""<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Hotspot</title><style>{style}</style></head>
<body><div class="c1"><h1 class="c2">Community Hotspot</h1><div class="c3">
{paragraphs}
<form action="/continue" method="get"><input type="hidden" name="tok" value="2f8a7e">
<input type="text" name="name" placeholder="Your name"><br><br>
<input type="submit" class="c4" value="Continue"></form>
<hr><p class="c5">Powered by a captive portal stand-in.</p></div></div></body></html>
"""
    return html.encode()


class FasLike(BaseHTTPRequestHandler):
    """Serves the stand-in page, gzipped when the client accepts it (nginx's default for text/html)."""

    page = b""
    protocol_version = "HTTP/1.1"  # keep-alive, as nginx answers

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path != "/":  # the browser's favicon request: nginx would answer 404 too
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.page
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        if "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body, 6)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def load_time(url: str, profile: Path) -> tuple[float, int]:
    """Milliseconds from navigation start to the load event, and the bytes transferred, on a fresh browser."""
    driver = chromium(profile, javascript=True)
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
        driver.execute_cdp_cmd("Network.emulateNetworkConditions", SLOW_3G)
        driver.execute_cdp_cmd("Emulation.setCPUThrottlingRate", {"rate": CPU_SLOWDOWN})
        driver.get(url)
        entry = driver.execute_script(
            "const e = performance.getEntriesByType('navigation')[0];"
            "return [e.loadEventEnd - e.startTime, e.transferSize, e.encodedBodySize, e.decodedBodySize];")
        return float(entry[0]), int(entry[1])
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=7, help="loads of each page")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="portal-slow3g-"))
    store = EmbeddedRedis(work / "redis").start()
    import_sites(redis.Redis.from_url(store.url), parse_csv(DEMO_CSV.read_text(encoding="utf-8")))
    portal = Gunicorn({
        "PORTAL_REDIS_URL": store.url, "PORTAL_SECRET_KEY": "slow3g", "PORTAL_DEVICE_KEY": "slow3g",
        "PORTAL_DATA_KEYS": Fernet.generate_key().decode(), "PORTAL_VAR_DIR": str(work / "var"),
    }, workers=2).start()
    FasLike.page = fas_like_page()
    fas = ThreadingHTTPServer(("127.0.0.1", 0), FasLike)
    threading.Thread(target=fas.serve_forever, daemon=True).start()
    fas_url = f"http://127.0.0.1:{fas.server_address[1]}/"
    times: dict[str, list[float]] = {"landing": [], "fas-like": []}
    sizes: dict[str, int] = {}
    try:
        for n in range(args.loads):
            arrival = urlencode({"identity": "hs-5101011006-1", "mac": f"02:00:00:00:10:{n:02X}",
                                 "ip": f"10.5.50.{10 + n}", "link-login-only": "http://10.5.50.1/login",
                                 "link-orig": "http://example.com/"})
            for name, url in (("landing", f"{portal.url}/hotspot/mikrotik?{arrival}"), ("fas-like", fas_url)):
                ms, transferred = load_time(url, work / f"profile-{name}-{n}")
                times[name].append(ms)
                sizes[name] = transferred
        print(f"\n== Slow 3G (latency {SLOW_3G['latency']} ms, {SLOW_3G['downloadThroughput']:,} B/s), "
              f"CPU / {CPU_SLOWDOWN}, fresh browser per load, {args.loads} loads each")
        print(f"{'page':<10} {'median ms':>9} {'(min-max)':>13} {'bytes on the wire':>18}")
        for name, values in times.items():
            print(f"{name:<10} {statistics.median(values):>9.0f} {min(values):>6.0f}-{max(values):<6.0f} "
                  f"{sizes[name]:>18,}")
        print(f"raw sizes: fas-like {len(FasLike.page):,} B")
    finally:
        fas.shutdown()
        portal.stop()
        store.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
