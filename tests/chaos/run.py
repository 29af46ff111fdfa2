"""``make chaos``: 1,000 complaints through the real HTTP flow while everything fails; must end 1000 / 0 / 0.

1. Start a Redis (AOF, everysec, as in production) in a temporary directory, two stand-in receivers on 127.0.0.1
   (LAPOR! and the province's case system, a signed webhook), gunicorn on a loopback port, and two
   delivery workers (``flask --app portal deliver``). Each receiver fails 30% of requests: 500, 503
   and 429 answers, 8-second hangs (the client gives up after 3), connection resets and drops,
   complaints stored and then answered 500 or not at all, and 200s that come late or after the
   client gave up.
2. Submit 1,000 complaints from 8 paced threads, each the resident's way: POST /hotspot/mikrotik, GET and
   POST /p/<token>/lapor, reading the tracking number from the receipt.
3. Chaos, by complaints submitted: past 200, while a delivery is in flight, worker 1 is SIGKILLed
   (restarted a second later); at 400 Redis is SIGKILLed and stays down until 550, so those
   complaints go to the spool; past 750, mid-delivery again, worker 2 is SIGKILLed and restarted.
4. Wait until both receivers hold every complaint (at most 5 minutes from the first submission);
   then LAPOR! answers one in ten, sending each signed status callback twice.
5. Print, from each receiver's own records, how many arrived, how many twice and how many never,
   with the time to drain and the drain rate; exit 1 unless 1000 / 0 / 0 on both channels within
   the 5 minutes (and every double callback applied once).
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis
import requests
from cryptography.fernet import Fernet

from portal.delivery import signing
from portal.embedded_redis import EmbeddedRedis
from portal.sites import import_sites, parse_csv
from tests.conftest import MIKROTIK_ARRIVAL, SITES_CSV, TOKEN
from tests.delivery.standins import Receiver

ROOT = Path(__file__).resolve().parent.parent.parent
TOTAL = int(os.environ.get("CHAOS_COMPLAINTS", 1000))
THREADS = 8
#: Seconds each submitting thread rests between complaints: spreads 1,000 over ~25 s, so the
#: outages below fall in the middle of the submissions instead of after them.
PACE = float(os.environ.get("CHAOS_PACE", 0.2))
CALLBACK_SECRET = "chaos-callback-secret"
#: 30% faults. hang and slow_accept last HANG seconds, longer than the client's TIMEOUT; late_ok
#: answers 200 after LATE seconds, within it; accept_500 and accept_drop store, then lose the answer.
MODES = (["ok"] * 70 + ["fail500"] * 4 + ["fail503"] * 3 + ["throttle429"] * 3 + ["hang"] * 4 + ["reset"] * 3
         + ["drop"] * 2 + ["accept_500"] * 4 + ["accept_drop"] * 3 + ["slow_accept"] * 2 + ["late_ok"] * 2)
HANG, TIMEOUT, LATE = 8.0, 3.0, 1.5
#: Both channels must hold every complaint this many seconds after the first submission.
DRAIN_LIMIT = float(os.environ.get("CHAOS_DRAIN_LIMIT", 300))
STARTED = re.compile(r'name="started" value="([^"]+)"')
FALLBACK = re.compile(r'name="fb" value="([^"]+)"')
RECEIPT = re.compile(r'id="tracking-number">([^<]+)<')


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Run:
    """The processes of one chaos run and what it observed."""

    def __init__(self, work: Path):
        self.work = work
        self.redis_server = EmbeddedRedis(work / "redis")
        self.receivers = {name: Receiver(self.hostile(seed), hang=HANG, late=LATE)
                          for name, seed in (("lapor", 1000), ("kasus", 2000))}
        self.receiver = self.receivers["lapor"]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted: set[str] = set()
        self.last_accepted = 0.0
        self.submitted = 0
        self.lock = threading.Lock()
        self.workers: dict[str, subprocess.Popen] = {}
        self.web: subprocess.Popen | None = None
        self.events: list[str] = []
        self.t0 = time.monotonic()

    @staticmethod
    def hostile(seed: int):
        rng, lock = random.Random(seed), threading.Lock()

        def behave(key, n):
            with lock:
                return rng.choice(MODES)

        return behave

    def note(self, text: str) -> None:
        line = f"[{time.monotonic() - self.t0:6.1f} s] {text}"
        self.events.append(line)
        print(line, flush=True)

    def env(self) -> dict:
        config = {
            "retry": {"max": 60, "base": 0.2, "cap": 2.0, "jitter": 0.5},
            "claim_idle": 3, "block": 0.5, "spool_every": 1,
            "callback": {"secret_env": "CHAOS_CALLBACK_SECRET"},
            "channels": [
                {"name": "lapor", "type": "lapor", "url": self.receivers["lapor"].url, "token_env": "CHAOS_LAPOR_TOKEN",
                 "timeout": TIMEOUT, "response": {"id": "trackingid", "url": "link"}},
                {"name": "kasus", "type": "webhook", "url": self.receivers["kasus"].url,
                 "secret_env": "CHAOS_WEBHOOK_SECRET", "timeout": TIMEOUT}],
        }
        (self.work / "delivery.json").write_text(json.dumps(config))
        return dict(
            os.environ,
            PORTAL_REDIS_URL=self.redis_server.url, PORTAL_VAR_DIR=str(self.work / "var"),
            PORTAL_SECRET_KEY="chaos-secret", PORTAL_DEVICE_KEY="chaos-device",
            PORTAL_DATA_KEYS=Fernet.generate_key().decode(), PORTAL_MIN_FILL_SECONDS="0",
            PORTAL_DEVICE_LIMIT="1000000", PORTAL_SITE_LIMIT="1000000", PORTAL_REDIS_RETRY_AFTER="1",
            PORTAL_REQUEST_LIMIT="0", PORTAL_SITE_REQUEST_LIMIT="0",  # one loopback client, one site
            PORTAL_DELIVERY_CONFIG=str(self.work / "delivery.json"), PORTAL_PUBLIC_URL=self.url,
            PORTAL_WORKERS="2", PORTAL_THREADS="8", CHAOS_LAPOR_TOKEN="chaos-token",
            CHAOS_CALLBACK_SECRET=CALLBACK_SECRET, CHAOS_WEBHOOK_SECRET="chaos-webhook-secret",
        )

    # -- processes ------------------------------------------------------------------------------

    def start(self) -> None:
        self.redis_server.start()
        import_sites(redis.Redis.from_url(self.redis_server.url), parse_csv(SITES_CSV))
        for receiver in self.receivers.values():
            receiver.start()
        self._env = self.env()
        self.web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
             "--bind", f"127.0.0.1:{self.port}", "portal.wsgi:app"],
            env=self._env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(self.work / "web.log", "ab"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/status", timeout=1).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or too busy starting to answer
                time.sleep(0.1)
        else:
            raise RuntimeError("gunicorn did not answer; see web.log")
        for name in ("chaos-1", "chaos-2"):
            self.start_worker(name)

    def start_worker(self, name: str) -> None:
        self.workers[name] = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "portal", "deliver", "--consumer", name],
            env=self._env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(self.work / f"{name}.log", "ab"))

    def kill_worker(self, name: str) -> None:
        self.workers[name].send_signal(signal.SIGKILL)
        self.workers[name].wait()
        self.note(f"worker {name} SIGKILLed ({self.posts()} POSTs so far)")
        threading.Timer(1.0, self._restart, args=(name,)).start()

    def posts(self) -> int:
        return sum(sum(receiver.posts.values()) for receiver in self.receivers.values())

    def holds_all(self) -> bool:
        return all(self.accepted <= set(receiver.stored) for receiver in self.receivers.values())

    def _restart(self, name: str) -> None:
        self.start_worker(name)
        self.note(f"worker {name} restarted")

    def stop(self) -> None:
        for child in self.workers.values():
            if child.poll() is None:
                child.terminate()
        for name, child in self.workers.items():
            try:
                code = child.wait(timeout=30)
                self.note(f"worker {name} stopped by SIGTERM (exit {code})")
            except subprocess.TimeoutExpired:
                child.kill()
        if self.web is not None:
            self.web.terminate()
            self.web.wait(timeout=30)
        for receiver in self.receivers.values():
            receiver.gate.set()  # end the hangs still held
            receiver.stop()
        self.redis_server.stop()

    # -- the resident's side ----------------------------------------------------------------------

    def submit_one(self, session: requests.Session, index: int) -> str:
        """One complaint the resident's way; retried until a receipt is shown."""
        mac = "02:%02X:%02X:%02X:%02X:%02X" % (index >> 24 & 255, index >> 16 & 255, index >> 8 & 255, index & 255, 7)
        for _ in range(50):
            try:
                arrival = session.post(f"{self.url}/hotspot/mikrotik", data=dict(MIKROTIK_ARRIVAL, mac=mac), timeout=10)
                token = TOKEN.search(arrival.text).group(1)
                form = session.get(f"{self.url}/p/{token}/lapor", timeout=10).text
                fields = {
                    "kind": "pengaduan", "category": random.choice(["kesehatan", "pendidikan", "tik"]),
                    "body": f"Keluhan nomor {index}: layanan puskesmas tutup lebih awal dari jadwal.",
                    "incident_date": time.strftime("%Y-%m-%d"), "desa": "Baler Bale Agung", "kecamatan": "Negara",
                    "kabupaten": "Kabupaten Jembrana", "place": "", "consent": "y", "website": "",
                    "name": f"Warga {index}" if index % 3 else "", "contact": "081234567890" if index % 2 else "",
                    "started": STARTED.search(form).group(1),
                }
                if index % 5 == 0:
                    fields["anonim"] = "y"
                fallback = FALLBACK.search(form)
                if fallback:
                    fields["fb"] = fallback.group(1)
                # The same form sent again is the same complaint (tracking from the form's nonce).
                for _ in range(20):
                    try:
                        receipt = session.post(f"{self.url}/p/{token}/lapor", data=fields, timeout=10)
                        found = RECEIPT.search(receipt.text)
                        if receipt.status_code == 200 and found:
                            return found.group(1).replace("-", "")
                    except requests.RequestException:
                        pass
                    time.sleep(0.2)
            except (requests.RequestException, AttributeError):
                time.sleep(0.2)
        raise RuntimeError(f"complaint {index}: no receipt after many tries")

    def submitter(self, indexes: list[int]) -> None:
        session = requests.Session()
        for index in indexes:
            tracking = self.submit_one(session, index)
            with self.lock:
                self.accepted.add(tracking)
                self.submitted += 1
                self.last_accepted = time.monotonic()
            time.sleep(PACE)

    def wait(self, condition, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)

    def chaos(self) -> None:
        """The failures, in order, each when its moment comes."""
        # Kill while a delivery is in flight at the receiver, so a message is in hand.
        self.wait(lambda: self.submitted >= TOTAL * 20 // 100 and self.posts() >= TOTAL // 20
                  and self.receiver.in_flight)
        self.kill_worker("chaos-1")
        self.wait(lambda: self.submitted >= TOTAL * 40 // 100)
        self.redis_server.stop(kill=True)
        self.note(f"Redis SIGKILLed at {self.submitted} submitted: complaints go to the spool")
        self.wait(lambda: self.submitted >= TOTAL * 55 // 100)
        self.redis_server.start()
        self.note(f"Redis restarted (AOF) at {self.submitted} submitted")
        self.wait(lambda: self.submitted >= TOTAL * 75 // 100 and self.receiver.in_flight)
        self.kill_worker("chaos-2")

    # -- the receiver answers, twice -------------------------------------------------------------

    def answer_twice(self, numbers: list[str]) -> int:
        """Send each signed 'answered' callback twice; return how many got a 200 both times."""
        ok = 0
        for tracking in numbers:
            body = json.dumps({"tracking": tracking, "status": "answered"}).encode()
            headers = {**signing.sign(CALLBACK_SECRET, body), "Content-Type": "application/json"}
            codes = [requests.post(f"{self.url}/callbacks/lapor", data=body, headers=headers, timeout=10).status_code
                     for _ in range(2)]
            ok += codes == [200, 200]
        return ok


def channel_line(run: "Run", name: str, begun: float) -> tuple[bool, str]:
    """One channel's books: arrived / twice / never, resends absorbed, time to drain and the rate."""
    receiver = run.receivers[name]
    stored = set(receiver.stored)
    arrived, never = len(run.accepted & stored), len(run.accepted - stored)
    twice = sum(1 for n in receiver.stored_count.values() if n > 1)
    strangers = len(stored - run.accepted)
    line = (f"{name}: {arrived} arrived, {twice} twice, {never} never  ({sum(receiver.posts.values())} POSTs, "
            f"{receiver.duplicates} resends absorbed by Idempotency-Key, {strangers} unknown)")
    drained = None
    if never == 0 and run.accepted:
        drained = max(receiver.stored_at[key] for key in run.accepted) - begun
        lag = drained + begun - run.last_accepted
        line += (f"\n    drained {drained:.1f} s after the first submission ({lag:.1f} s after the last): "
                 f"{arrived / drained * 60:.0f} complaints/min")
    good = (arrived, twice, never, strangers) == (TOTAL, 0, 0, 0) and drained is not None and drained <= DRAIN_LIMIT
    return good, line


def main() -> int:
    started = time.monotonic()
    # CHAOS_KEEP=1 keeps the logs (web.log, chaos-*.log, redis/) for a post-mortem.
    keep = os.environ.get("CHAOS_KEEP")
    with (contextlib.nullcontext(tempfile.mkdtemp(prefix="portal-chaos-")) if keep
          else tempfile.TemporaryDirectory(prefix="portal-chaos-")) as tmp:
        if keep:
            print(f"logs kept in {tmp}", flush=True)
        run = Run(Path(tmp))
        try:  # a start that fails half-way still stops what it started
            run.start()
            run.note(f"gunicorn on {run.url}, stand-in LAPOR! on {run.receivers['lapor'].url}, "
                     f"case system on {run.receivers['kasus'].url}, 2 workers")
            threads = [threading.Thread(target=run.submitter, args=(list(range(i, TOTAL, THREADS)),))
                       for i in range(THREADS)]
            threads.append(threading.Thread(target=run.chaos))
            begun = time.monotonic()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            log = (Path(tmp) / "web.log").read_text(errors="replace")
            spooled = set(re.findall(r"complaint (\w+) spooled: Redis unreachable", log)) & run.accepted
            run.note(f"{len(run.accepted)} complaints submitted ({len(spooled)} of them went to the spool)")
            deadline = begun + DRAIN_LIMIT
            while time.monotonic() < deadline and not run.holds_all():
                time.sleep(0.2)
            run.note("receivers hold " + ", ".join(f"{name} {len(run.accepted & set(r.stored))}"
                                                   for name, r in run.receivers.items()))
            client = redis.Redis.from_url(run.redis_server.url)
            answered = sorted(run.accepted & set(run.receiver.stored))[::10]
            # The worker may still be settling the last ones; answer only once they are forwarded.
            wait_until = time.monotonic() + 30
            while time.monotonic() < wait_until and any(
                    client.hget(f"portal:{{p51}}:complaint:{t}", "status") != b"forwarded" for t in answered):
                time.sleep(0.2)
            both_ok = run.answer_twice(answered)
            histories = [json.loads(client.hget(f"portal:{{p51}}:complaint:{t}", "history")) for t in answered]
            applied_once = sum(1 for h in histories if [s for s, _ in h].count("answered") == 1)
            dead = client.xlen("portal:{p51}:complaints:dead")
        finally:
            run.stop()
    print("\nreceivers' records:")
    good = len(run.accepted) == TOTAL and dead == 0
    for name in run.receivers:
        ok, line = channel_line(run, name, begun)
        good = good and ok
        print("  " + line)
    print(f"dead letters: {dead}")
    print(f"status callbacks: {len(answered)} answered twice each, {both_ok} accepted twice, "
          f"{applied_once} applied exactly once")
    print(f"duration: {time.monotonic() - started:.1f} s")
    good = good and applied_once == len(answered) == both_ok
    print("CHAOS OK" if good else "CHAOS FAILED")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
