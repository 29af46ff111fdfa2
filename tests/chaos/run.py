"""``make chaos``: 1,000 complaints through the real HTTP flow while everything fails; must end 1000 / 0 / 0.

1. Start a Redis (AOF, fsync always) in a temporary directory, the stand-in LAPOR! on 127.0.0.1
   (answers 500, hangs, drops connections, accepts and then loses its answer, answers late), gunicorn
   on a loopback port, and two delivery workers (``flask --app portal deliver``).
2. Submit 1,000 complaints from 8 paced threads, each the resident's way: POST /hotspot/mikrotik, GET and
   POST /p/<token>/lapor, reading the tracking number from the receipt.
3. Chaos, by complaints submitted: past 200, while a delivery is in flight, worker 1 is SIGKILLed
   (restarted a second later); at 400 Redis is SIGKILLed and stays down until 550, so those
   complaints go to the spool; past 750, mid-delivery again, worker 2 is SIGKILLed and restarted.
4. Wait (bounded) until the receiver holds every complaint; then the receiver answers one in ten,
   sending each signed status callback twice.
5. Print, from the receiver's own records, how many arrived, how many twice and how many never;
   exit 1 unless 1000 / 0 / 0 (and every double callback applied once).
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
MODES = ["ok"] * 70 + ["fail500"] * 8 + ["hang"] * 4 + ["drop"] * 6 + ["accept_drop"] * 6 + ["slow_accept"] * 6
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
        rng, lock = random.Random(1000), threading.Lock()

        def behave(key, n):
            with lock:
                return rng.choice(MODES)

        self.receiver = Receiver(behave, hang=1.2)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted: set[str] = set()
        self.submitted = 0
        self.lock = threading.Lock()
        self.workers: dict[str, subprocess.Popen] = {}
        self.events: list[str] = []
        self.t0 = time.monotonic()

    def note(self, text: str) -> None:
        line = f"[{time.monotonic() - self.t0:6.1f} s] {text}"
        self.events.append(line)
        print(line, flush=True)

    def env(self) -> dict:
        config = {
            "retry": {"max": 60, "base": 0.2, "cap": 2.0, "jitter": 0.5},
            "claim_idle": 3, "block": 0.5, "spool_every": 1,
            "callback": {"secret_env": "CHAOS_CALLBACK_SECRET"},
            "channels": [{"name": "lapor", "type": "lapor", "url": self.receiver.url, "token_env": "CHAOS_LAPOR_TOKEN",
                          "timeout": 0.5, "response": {"id": "trackingid", "url": "link"}}],
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
            CHAOS_CALLBACK_SECRET=CALLBACK_SECRET,
        )

    # -- processes ------------------------------------------------------------------------------

    def start(self) -> None:
        self.redis_server.start()
        import_sites(redis.Redis.from_url(self.redis_server.url), parse_csv(SITES_CSV))
        self.receiver.start()
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
            except requests.ConnectionError:
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
        self.note(f"worker {name} SIGKILLed ({sum(self.receiver.posts.values())} POSTs so far)")
        threading.Timer(1.0, self._restart, args=(name,)).start()

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
        self.web.terminate()
        self.web.wait(timeout=30)
        self.receiver.stop()
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
            time.sleep(PACE)

    def wait(self, condition, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)

    def chaos(self) -> None:
        """The failures, in order, each when its moment comes."""
        posts = lambda: sum(self.receiver.posts.values())  # noqa: E731
        # Kill while a delivery is in flight at the receiver, so a message is in hand.
        self.wait(lambda: self.submitted >= TOTAL * 20 // 100 and posts() >= TOTAL // 20 and self.receiver.in_flight)
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


def main() -> int:
    started = time.monotonic()
    # CHAOS_KEEP=1 keeps the logs (web.log, chaos-*.log, redis/) for a post-mortem.
    keep = os.environ.get("CHAOS_KEEP")
    with (contextlib.nullcontext(tempfile.mkdtemp(prefix="portal-chaos-")) if keep
          else tempfile.TemporaryDirectory(prefix="portal-chaos-")) as tmp:
        if keep:
            print(f"logs kept in {tmp}", flush=True)
        run = Run(Path(tmp))
        run.start()
        run.note(f"gunicorn on {run.url}, stand-in LAPOR! on {run.receiver.url}, 2 workers")
        try:
            threads = [threading.Thread(target=run.submitter, args=(list(range(i, TOTAL, THREADS)),))
                       for i in range(THREADS)]
            threads.append(threading.Thread(target=run.chaos))
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            log = (Path(tmp) / "web.log").read_text(errors="replace")
            spooled = set(re.findall(r"complaint (\w+) spooled: Redis unreachable", log)) & run.accepted
            run.note(f"{len(run.accepted)} complaints submitted ({len(spooled)} of them went to the spool)")
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and not run.accepted <= set(run.receiver.stored):
                time.sleep(0.5)
            run.note(f"receiver holds {len(run.accepted & set(run.receiver.stored))} of them")
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
    arrived = len(run.accepted & set(run.receiver.stored))
    twice = sum(1 for key, n in run.receiver.stored_count.items() if n > 1)
    never = len(run.accepted - set(run.receiver.stored))
    strangers = len(set(run.receiver.stored) - run.accepted)
    print(f"\nreceiver's records: {arrived} arrived, {twice} twice, {never} never"
          f"  ({sum(run.receiver.posts.values())} POSTs, {run.receiver.duplicates} resends absorbed by"
          f" Idempotency-Key, {strangers} unknown, {dead} dead letters)")
    print(f"status callbacks: {len(answered)} answered twice each, {both_ok} accepted twice, "
          f"{applied_once} applied exactly once")
    print(f"duration: {time.monotonic() - started:.1f} s")
    good = (arrived, twice, never) == (TOTAL, 0, 0) and len(run.accepted) == TOTAL and strangers == 0 \
        and applied_once == len(answered) == both_ok
    print("CHAOS OK" if good else "CHAOS FAILED")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
