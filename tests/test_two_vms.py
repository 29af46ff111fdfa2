"""deploy/two-vms/: the Redis and Sentinel files are accepted by real servers, the env keys are known."""
from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import redis as redis_py

from portal.config import Defaults
from portal.ha_local import free_port, redis_binary

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def loopback(text: str, port: int) -> str:
    """The file with its private addresses on loopback and its port free, to run it here."""
    text = re.sub(r"^bind .*$", "bind 127.0.0.1", text, flags=re.M)
    text = re.sub(r"^port \d+$", f"port {port}", text, flags=re.M)
    return text.replace("10.0.0.21", "127.0.0.1")


def run_until_answers(args, port: int, log: Path) -> subprocess.Popen:
    process = subprocess.Popen(args, stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    client = redis_py.Redis(port=port, socket_timeout=1)
    for _ in range(100):
        if process.poll() is not None:
            raise AssertionError(log.read_text())
        try:
            client.ping()
            return process
        except redis_py.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError("no answer: " + log.read_text())


def test_redis_conf_with_the_ha_part_refuses_writes_without_replicas(tmp_path):
    port = free_port()
    conf = tmp_path / "redis.conf"
    base = loopback((DEPLOY / "redis" / "redis.conf").read_text(), port)
    conf.write_text(base + f"\ndir {tmp_path}\n" + loopback((DEPLOY / "two-vms" / "redis-ha.conf").read_text(), port))
    process = run_until_answers([redis_binary(), str(conf)], port, tmp_path / "redis.log")
    try:
        client = redis_py.Redis(port=port, socket_timeout=2)
        assert client.config_get("min-replicas-to-write")["min-replicas-to-write"] == "1"
        try:
            client.set("k", "v")
        except redis_py.ResponseError as error:
            assert "replicas" in str(error)  # NOREPLICAS: no replica attached here
        else:
            raise AssertionError("a lone primary took a write")
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_sentinel_conf_runs_and_monitors_the_portal_service(tmp_path):
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(loopback((DEPLOY / "two-vms" / "sentinel.conf").read_text(), port) + f"dir {tmp_path}\n")
    process = run_until_answers([redis_binary(), str(conf), "--sentinel"], port, tmp_path / "sentinel.log")
    try:
        masters = redis_py.Redis(port=port, socket_timeout=2).sentinel_masters()
        assert "portal" in masters and int(masters["portal"]["quorum"]) == 2
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_two_vm_settings_are_keys_the_portal_knows():
    text = (DEPLOY / "two-vms" / "portal.env").read_text()
    keys = set(re.findall(r"^PORTAL_([A-Z0-9_]+)=", text, flags=re.M))
    assert keys and keys <= {name for name in vars(Defaults) if name.isupper()}
    assert "PORTAL_REDIS_SENTINELS" in text
