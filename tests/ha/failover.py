"""``make failover-test``: the resident journey through nginx while Redis and a node fail; counts from outside.

1. Start the ``make ha`` layout (portal/ha_local.py): Redis primary + 2 replicas, 3 Sentinels,
   2 portal nodes each with its worker and own spool, nginx; complaints go to a stand-in LAPOR!
   on loopback (tests/delivery/standins.py, the chaos harness's receiver), which keeps its own books.
2. Phones (threads, a fresh connection per journey, as phones do) walk the journey through nginx:
   arrival, complaint form, complaint (the receipt's tracking number is noted), grant. A step that
   fails (5xx, timeout, refused connection) is retried by the phone, as a resident would tap again.
3. Meanwhile, by time since the load began: the Redis primary is SIGKILLed; one node (gunicorn and
   its worker) is SIGKILLed; the old primary comes back as a replica of the new one; the dead node
   comes back and replays its spool.
4. Once the load stops, wait until the receiver holds every receipt shown; print, from its books,
   how many arrived once, twice and never, the requests that failed, how many answers failed open,
   and the failover time (primary killed → the Sentinels' majority names a new one, and → the first
   session stored in Redis again). Exit 1 unless every receipt arrived exactly once, none is lost,
   and every phone got an answer to its grant.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests

from portal.ha_local import Layout
from tests.conftest import MIKROTIK_ARRIVAL, SITES_CSV, TOKEN
from tests.delivery.standins import Receiver

PHONES = int(os.environ.get("FAILOVER_PHONES", 12))
LOAD_SECONDS = float(os.environ.get("FAILOVER_SECONDS", 30))
DRAIN_LIMIT = float(os.environ.get("FAILOVER_DRAIN_LIMIT", 120))
#: When each fault happens, in seconds after the load began (scaled to LOAD_SECONDS).
KILL_PRIMARY, KILL_NODE, PRIMARY_BACK, NODE_BACK = (LOAD_SECONDS * f for f in (0.15, 0.25, 0.5, 0.65))
STARTED = re.compile(r'name="started" value="([^"]+)"')
FALLBACK = re.compile(r'name="fb" value="([^"]+)"')
RECEIPT = re.compile(r'id="tracking-number">([^<]+)<')
EXPIRED = object()


class Books:
    """What the phones saw: each request's outcome and time, receipts, grants."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: list[tuple[float, str, bool]] = []  # (time, step, ok)
        self.failures = Counter()                           # (step, status code or exception name)
        self.receipts: set[str] = set()
        self.grants = Counter()                             # "answered" / "unanswered"
        self.fail_open = 0                                  # arrivals served with the session in the token
        self.expired = 0                                    # pages answered "expired" (session lost): started over
        self.stored_again_at: float | None = None           # first Redis-held session after the kill

    def note(self, step: str, ok: bool, what: str = "") -> None:
        with self.lock:
            self.requests.append((time.monotonic(), step, ok))
            if not ok:
                self.failures[(step, what)] += 1


class Run:
    def __init__(self, work: Path):
        self.receiver = Receiver(hang=2.0).start()
        delivery = {
            "retry": {"max": 60, "base": 0.2, "cap": 2.0, "jitter": 0.5},
            "claim_idle": 3, "block": 0.5, "spool_every": 1,
            "channels": [{"name": "lapor", "type": "lapor", "url": self.receiver.url, "token_env": "FAILOVER_LAPOR_TOKEN",
                          "timeout": 3, "response": {"id": "trackingid", "url": "link"}}],
        }
        env = {"FAILOVER_LAPOR_TOKEN": "failover-token", "PORTAL_MIN_FILL_SECONDS": "0",
               "PORTAL_DEVICE_LIMIT": "1000000", "PORTAL_SITE_LIMIT": "1000000",
               "PORTAL_REQUEST_LIMIT": "0", "PORTAL_SITE_REQUEST_LIMIT": "0"}  # one loopback client, one site
        self.layout = Layout(work, env=env, delivery=delivery)
        self.books = Books()
        self.t0 = time.monotonic()
        self.load_began = None
        self.stop_load = threading.Event()
        self.events: list[str] = []
        self.killed_at = self.new_primary_at = None
        self.old_primary = None

    def note(self, text: str) -> None:
        line = f"[{time.monotonic() - self.t0:6.1f} s] {text}"
        self.events.append(line)
        print(line, flush=True)

    # -- a phone --------------------------------------------------------------------------------

    def step(self, name: str, call, check) -> object | None:
        """One request, retried like a resident tapping again; the answer, None if none came, or EXPIRED."""
        for _ in range(30):
            try:
                response = call()
                ok, what = response.status_code < 500 and bool(check(response)), str(response.status_code)
            except requests.RequestException as error:
                response, ok, what = None, False, type(error).__name__
            if response is not None and response.status_code == 410:
                # "This page has expired": the session was lost (written to the old primary, not yet
                # on a replica: sessions do not WAIT). An answer, not a failure; the phone starts over.
                with self.books.lock:
                    self.books.expired += 1
                return EXPIRED
            self.books.note(name, ok, what)
            if ok:
                return response
            time.sleep(0.3)
        return None

    def journey(self, index: int, again: int = 3) -> None:
        url = self.layout.url
        mac = "02:%02X:%02X:%02X:%02X:%02X" % (index >> 24 & 255, index >> 16 & 255, index >> 8 & 255, index & 255, 9)
        with requests.Session() as phone:
            arrival = self.step("arrival", lambda: phone.post(f"{url}/hotspot/mikrotik",
                                                              data=dict(MIKROTIK_ARRIVAL, mac=mac), timeout=10),
                                lambda r: r.status_code == 200 and TOKEN.search(r.text))
            if arrival is None:
                self.books.grants["unanswered"] += 1
                return
            token = TOKEN.search(arrival.text).group(1)
            if token.startswith("x."):
                with self.books.lock:
                    self.books.fail_open += 1
            elif self.killed_at and self.books.stored_again_at is None:
                self.books.stored_again_at = time.monotonic()
            form = self.step("form", lambda: phone.get(f"{url}/p/{token}/lapor", timeout=10),
                             lambda r: r.status_code == 200 and STARTED.search(r.text))
            if form is EXPIRED and again:
                return self.journey(index, again - 1)  # the resident taps the captive page again
            form = None if form is EXPIRED else form
            if form is not None:
                fields = {"kind": "pengaduan", "category": "kesehatan", "incident_date": time.strftime("%Y-%m-%d"),
                          "body": f"Keluhan nomor {index}: puskesmas tutup lebih awal dari jadwal.",
                          "desa": "Baler Bale Agung", "kecamatan": "Negara", "kabupaten": "Kabupaten Jembrana",
                          "place": "", "name": "", "contact": "", "consent": "y", "website": "",
                          "started": STARTED.search(form.text).group(1)}
                fallback = FALLBACK.search(form.text)
                if fallback:
                    fields["fb"] = fallback.group(1)
                receipt = self.step("complaint", lambda: phone.post(f"{url}/p/{token}/lapor", data=fields, timeout=10),
                                    lambda r: r.status_code == 200 and RECEIPT.search(r.text))
                if receipt is not None and receipt is not EXPIRED:
                    with self.books.lock:
                        self.books.receipts.add(RECEIPT.search(receipt.text).group(1).replace("-", ""))
            grant = self.step("grant", lambda: phone.post(f"{url}/p/{token}/connect", data={"fb": fields.get("fb", "")}
                                                          if form is not None else {}, timeout=10, allow_redirects=False),
                              lambda r: r.status_code in (200, 303))
            self.books.grants["answered" if grant is not None else "unanswered"] += 1  # "expired" is an answer

    def phone(self, number: int) -> None:
        index = number
        while not self.stop_load.is_set():
            self.journey(index)
            index += PHONES
            time.sleep(0.1)

    # -- the faults -----------------------------------------------------------------------------

    def at(self, seconds: float) -> None:
        while time.monotonic() - self.load_began < seconds:
            time.sleep(0.02)

    def faults(self) -> None:
        layout = self.layout
        self.at(KILL_PRIMARY)
        self.old_primary = layout.primary_port()
        layout.kill_redis(self.old_primary)
        self.killed_at = time.monotonic()
        self.note(f"Redis primary :{self.old_primary} SIGKILLed")
        threading.Thread(target=self.watch_failover, daemon=True).start()
        self.at(KILL_NODE)
        layout.kill_node(0)
        self.note("node 1 (gunicorn + worker) SIGKILLed")
        self.at(PRIMARY_BACK)
        layout.restart_as_replica(self.old_primary)
        self.note(f"old primary :{self.old_primary} back, as a replica of :{layout.primary_port()}")
        self.at(NODE_BACK)
        layout.start_node(0)
        self.note("node 1 back (its worker replays its spool)")

    def watch_failover(self) -> None:
        while True:
            port = self.layout.primary_port()
            if port and port != self.old_primary:
                self.new_primary_at = time.monotonic()
                self.note(f"Sentinels name :{port} the primary ({self.new_primary_at - self.killed_at:.1f} s after the kill)")
                return
            time.sleep(0.05)


def report(run: Run) -> bool:
    books, receiver = run.books, run.receiver
    stored = set(receiver.stored)
    arrived = len(books.receipts & stored)
    twice = sum(1 for key in books.receipts if receiver.stored_count[key] > 1)
    never = len(books.receipts - stored)
    strangers = len(stored - books.receipts)
    failed = [(t, step) for t, step, ok in books.requests if not ok]
    window_end = (run.new_primary_at or run.killed_at) + 10 if run.killed_at else 0
    in_window = [f for f in failed if run.killed_at and run.killed_at <= f[0] <= window_end]
    print("\nfailover test:")
    print(f"  requests: {len(books.requests)} through nginx, {len(failed)} failed and retried by the phone "
          f"({', '.join(f'{k} {w}: {v}' for (k, w), v in sorted(books.failures.items())) or 'none'}); "
          f"{len(in_window)} of them within 10 s after the new primary")
    print(f"  arrivals served fail-open (session in the token): {books.fail_open}; pages answered "
          f"'expired' (session lost with the old primary; the phone started over): {books.expired}")
    if run.new_primary_at:
        print(f"  failover time: {run.new_primary_at - run.killed_at:.1f} s to a new primary (Sentinel)"
              + (f", {books.stored_again_at - run.killed_at:.1f} s to the first session stored in Redis again"
                 if books.stored_again_at else ""))
    else:
        print("  failover time: no new primary was named")
    print(f"  grants: {books.grants['answered']} answered, {books.grants['unanswered']} without an answer")
    print(f"  receipts shown: {len(books.receipts)}; receiver: {arrived} arrived once or more, {twice} twice, "
          f"{never} never, {strangers} unknown ({sum(receiver.posts.values())} POSTs, "
          f"{receiver.duplicates} resends absorbed by Idempotency-Key)")
    workers = [w.name for w in run.layout.workers if not w.alive()]
    print(f"  workers not running at the end: {', '.join(workers) or 'none'}")
    good = (books.receipts and twice == 0 and never == 0 and strangers == 0 and books.grants["unanswered"] == 0
            and run.new_primary_at is not None and not workers)
    print("FAILOVER OK" if good else "FAILOVER FAILED")
    return bool(good)


def main() -> int:
    keep = os.environ.get("FAILOVER_KEEP")
    work = Path(tempfile.mkdtemp(prefix="portal-failover-"))
    run = Run(work)
    try:
        run.layout.start(SITES_CSV)
        run.note(f"up: nginx {run.layout.url}, nodes {run.layout.node_ports}, Redis {run.layout.redis_ports}, "
                 f"Sentinels {run.layout.sentinel_ports}; {PHONES} phones for {LOAD_SECONDS:.0f} s")
        run.load_began = time.monotonic()
        phones = [threading.Thread(target=run.phone, args=(n,)) for n in range(PHONES)]
        for thread in phones:
            thread.start()
        faults = threading.Thread(target=run.faults)
        faults.start()
        run.at(LOAD_SECONDS)
        run.stop_load.set()
        for thread in phones + [faults]:
            thread.join()
        run.note(f"load stopped: {len(run.books.receipts)} receipts shown; waiting for the receiver")
        deadline = time.monotonic() + DRAIN_LIMIT
        while time.monotonic() < deadline and not run.books.receipts <= set(run.receiver.stored):
            time.sleep(0.2)
        run.note(f"receiver holds {len(run.books.receipts & set(run.receiver.stored))} of them")
        good = report(run)
    finally:
        run.layout.stop()
        run.receiver.gate.set()
        run.receiver.stop()
        if keep:
            print(f"logs kept in {work}")
        else:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
