"""``make run``'s program (``python -m portal.serve``) supervises: whatever dies comes back.

One run in a temporary VAR dir on a free port: the gunicorn master, the delivery worker and
the embedded Redis are each SIGKILLed and must each be running (and working) again within
seconds, with a log line; SIGTERM then stops everything, Redis last, and leaves nothing behind.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import redis as redis_py
import requests

from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
COME_BACK = 45  # seconds; generous because the machine's two cores are shared


def eventually(predicate, timeout: float = COME_BACK, interval: float = 0.2):
    """Return the first truthy value of *predicate* within *timeout* seconds, else fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (requests.RequestException, redis_py.RedisError, OSError, psutil.Error):
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not within {timeout} s")


class MakeRun:
    """``python -m portal.serve`` as `make run` starts it, with its output in a file."""

    def __init__(self, tmp_path: Path):
        self.var = tmp_path / "var"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / "make-run.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
        env.update(PORTAL_VAR_DIR=str(self.var), PORT=str(self.port), PORTAL_WORKERS="1")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "portal.serve"], env=env, cwd=ROOT,
                                            stdout=log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def child(self, role: str) -> psutil.Process | None:
        """The supervisor's live child playing *role*: web, worker or redis."""
        marks = {"web": "gunicorn", "worker": "deliver", "redis": "redis-server"}
        for child in psutil.Process(self.process.pid).children():
            try:
                if child.status() != psutil.STATUS_ZOMBIE and marks[role] in " ".join(child.cmdline()):
                    return child
            except psutil.NoSuchProcess:
                continue
        return None

    def ready(self) -> dict:
        return requests.get(self.url + "/readyz", timeout=5).json()

    def redis(self) -> redis_py.Redis:
        return redis_py.Redis(unix_socket_path=str(self.var / "redis" / "redis.sock"), socket_timeout=2)


@pytest.fixture
def make_run(tmp_path):
    run = MakeRun(tmp_path)
    try:
        eventually(lambda: run.ready()["worker"]["last_seen_seconds_ago"] is not None, timeout=90)
        yield run
    finally:
        if run.process.poll() is None:
            run.process.terminate()
            try:
                run.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                run.process.kill()


def kill(process: psutil.Process) -> int:
    process.send_signal(signal.SIGKILL)
    return process.pid


def test_make_run_restarts_the_web_server_the_worker_and_redis(make_run):
    run = make_run
    worker = run.child("worker")
    assert worker.environ()["PORTAL_OUTBOX_DIR"] == str(run.var / "outbox")  # visible delivery channel

    old = kill(run.child("web"))
    web = eventually(lambda: (p := run.child("web")) and p.pid != old and p)
    eventually(lambda: requests.get(run.url + "/healthz", timeout=5).status_code == 200)
    assert f"web (gunicorn) (pid {old}) killed by SIGKILL" in run.log()
    assert eventually(lambda: f"web (gunicorn) restarted (pid {web.pid})" in run.log())

    old = kill(run.child("worker"))
    killed_at = time.time()
    worker = eventually(lambda: (p := run.child("worker")) and p.pid != old and p)
    # The new worker is working: its heartbeat is newer than the kill.
    eventually(lambda: run.ready()["worker"]["last_seen_seconds_ago"] < time.time() - killed_at)
    assert f"delivery worker (pid {old}) killed by SIGKILL" in run.log()
    assert eventually(lambda: f"delivery worker restarted (pid {worker.pid})" in run.log())

    run.redis().set("before-the-crash", "kept")
    old = kill(run.child("redis"))
    redis = eventually(lambda: (p := run.child("redis")) and p.pid != old and p)
    assert eventually(lambda: run.redis().get("before-the-crash")) == b"kept"  # AOF replayed
    eventually(lambda: run.ready()["redis"] == "up")
    assert f"embedded Redis (pid {old}) killed by SIGKILL" in run.log()
    assert eventually(lambda: f"embedded Redis restarted (pid {redis.pid})" in run.log())

    # Ctrl-C / SIGTERM: everything stops, and nothing is left running.
    children = [run.child(role) for role in ("web", "worker", "redis")]
    run.process.terminate()
    assert run.process.wait(timeout=90) == 0
    for child in children:
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


def test_a_child_that_keeps_dying_is_restarted_with_growing_delays(make_run):
    run = make_run
    for _ in range(3):
        old = kill(run.child("worker"))
        eventually(lambda: (p := run.child("worker")) and p.pid != old)
    log = run.log()
    # The delays double while the worker keeps dying soon after each start.
    assert "restarting in 1 s" in log and "restarting in 2 s" in log and "restarting in 4 s" in log


def test_a_redis_reused_from_a_cli_command_is_watched_through_its_pidfile(tmp_path):
    from portal.embedded_redis import EmbeddedRedis
    from portal.serve import RedisChild

    first = EmbeddedRedis(tmp_path / "redis").start()  # e.g. started by `flask --app portal …`
    reused = EmbeddedRedis(tmp_path / "redis").start()  # `make run` finds it answering
    assert reused.process is None
    watched = RedisChild(reused)
    try:
        assert watched.alive()
        first.stop(kill=True)
        # Three misses in a row before it counts as dead: a slow answer is not a death.
        assert [watched.alive() for _ in range(3)] == [True, True, False]
        watched.start()  # make run's restart: now its own child, on the same AOF
        assert reused.process is not None and watched.alive()
    finally:
        reused.stop()
        first.stop()
