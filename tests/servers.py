"""Start the portal under real gunicorn on a loopback port, for end-to-end tests and benchmarks."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def portal_env(redis_url: str, var_dir, *, data_keys: str | None = None, **settings) -> dict:
    """The environment of a portal process for a test: its Redis, fresh secrets, its own var/.

    *settings* are further portal keys without the prefix (``MIN_FILL_SECONDS=0``).
    """
    from cryptography.fernet import Fernet

    env = {
        "PORTAL_REDIS_URL": redis_url,
        "PORTAL_SECRET_KEY": "test-secret",
        "PORTAL_DEVICE_KEY": "test-device",
        "PORTAL_DATA_KEYS": data_keys or Fernet.generate_key().decode(),
        "PORTAL_VAR_DIR": str(var_dir),
    }
    env.update({f"PORTAL_{key}": str(value) for key, value in settings.items()})
    return env


class Gunicorn:
    """gunicorn with deploy/gunicorn.conf.py serving ``portal.wsgi:app`` on 127.0.0.1."""

    def __init__(self, env: dict, *, workers: int = 2, worker_class: str | None = None, threads: int | None = None,
                 app: str = "portal.wsgi:app"):
        self.app = app  # tests/bench serves its bare Flask floor the same way
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, **env, PORTAL_WORKERS=str(workers))
        if worker_class:
            self.env["PORTAL_WORKER_CLASS"] = worker_class
        if threads:
            self.env["PORTAL_THREADS"] = str(threads)
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> "Gunicorn":
        # A file, not a pipe: a pipe nobody reads fills up and blocks the server's logging.
        import tempfile

        self.log = tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
             "--bind", f"127.0.0.1:{self.port}", self.app],
            env=self.env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self.log,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("gunicorn exited: " + self.log_text()[-2000:])
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:  # not up yet, or slow to answer on a loaded machine
                time.sleep(0.1)
        log = self.log_text()[-2000:]
        self.stop()  # the caller's fixture never gets to stop a server that did not start
        raise RuntimeError("gunicorn did not answer in time: " + log)

    def log_text(self) -> str:
        """What gunicorn and the app logged so far."""
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None
        Path(self.log.name).unlink(missing_ok=True)
