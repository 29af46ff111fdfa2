"""deploy/: every setting documented once, and the Redis configuration accepted by a real server."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import redis as redis_py

from portal.config import Defaults
from portal.embedded_redis import server_binary

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def documented_keys() -> list[str]:
    text = (DEPLOY / "portal.env.example").read_text(encoding="utf-8")
    return re.findall(r"^#?\s?PORTAL_([A-Z0-9_]+)=", text, flags=re.M)


def test_every_setting_is_documented_exactly_once():
    settings = {name for name in vars(Defaults) if name.isupper()}
    documented = documented_keys()
    assert sorted(settings - set(documented)) == []
    assert sorted(set(documented) - settings) == []
    assert len(documented) == len(set(documented))


def test_redis_conf_is_accepted_by_a_real_server(tmp_path):
    import os

    binary = os.environ.get("PORTAL_TEST_REDIS_BINARY") or server_binary()
    socket = tmp_path / "redis.sock"
    process = subprocess.Popen([
        binary, str(DEPLOY / "redis" / "redis.conf"),
        "--port", "0", "--unixsocket", str(socket), "--dir", str(tmp_path), "--daemonize", "no",
    ], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        client = redis_py.Redis(unix_socket_path=str(socket), socket_timeout=1)
        for _ in range(100):
            if process.poll() is not None:
                raise AssertionError("redis-server refused deploy/redis/redis.conf:\n" + process.stdout.read().decode())
            try:
                client.ping()
                break
            except (redis_py.ConnectionError, FileNotFoundError):
                import time

                time.sleep(0.05)
        assert client.config_get("appendonly")["appendonly"] == "yes"
        assert client.config_get("appendfsync")["appendfsync"] == "everysec"  # the journal covers complaints
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    finally:
        process.terminate()
        process.wait(timeout=10)
