"""The one Redis connection of a process, with a circuit breaker for fail-open paths.

The resident's page must never wait on a dead Redis: after one failure the
breaker stays open for ``REDIS_RETRY_AFTER`` seconds and callers take their
fallback path at once instead of paying a connect timeout on every request.
"""
from __future__ import annotations

import re
import threading
import time

import redis
import redis._parsers.base
import redis.cluster
import redis.sentinel
from flask import Flask, current_app, has_app_context
from redis.backoff import NoBackoff
from redis.retry import Retry

EXTENSION = "portal_redis"


class RedisUnavailable(Exception):
    """Redis is down or the circuit is open; take the fallback path."""


class Breaker:
    """Remember a recent Redis failure so the next requests skip Redis quickly."""

    def __init__(self, retry_after: float):
        self.retry_after = retry_after
        self._open_until = 0.0
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        return time.monotonic() < self._open_until

    def trip(self) -> None:
        with self._lock:
            self._open_until = time.monotonic() + self.retry_after

    def reset(self) -> None:
        self._open_until = 0.0


class _RetryBroken(Retry):
    """redis-py's Retry, except that a LOADING answer is not retried.

    A server reading its data after a restart answers only between the keys it loads, so every
    round trip (and every reconnect's handshake) waits for that: retrying one made an arrival
    take 10–20 s before it failed open. The caller's fail-open path answers at once instead.
    """

    def call_with_retry(self, do, fail, is_retryable=None, with_failure_count=False):
        def retryable(error):
            if isinstance(error, redis.BusyLoadingError):
                return False
            return is_retryable(error) if is_retryable is not None else True

        return super().call_with_retry(do, fail, retryable, with_failure_count)


def report_down() -> None:
    """:func:`report_failure` where an app is at hand (a cache refreshed outside any app keeps quiet)."""
    if has_app_context():
        report_failure()


class _BlockingSentinelPool(redis.sentinel.SentinelConnectionPool, redis.BlockingConnectionPool):
    """Sentinel's pool (finds the current primary) that waits for a free connection instead of raising."""


CLUSTER_SCHEME = "redis+cluster://"
CLIENT_NAME = "portal"


def parse_sentinels(text: str) -> list[tuple[str, int]]:
    """``host:port,host:port`` as redis-py's Sentinel wants it; ValueError on a malformed entry."""
    hosts = []
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"PORTAL_REDIS_SENTINELS: {item!r} is not host:port")
        hosts.append((host.strip("[]"), int(port)))
    return hosts


def connect(url: str, *, pool_size: int = 32, timeout: float = 0.5, sentinels: str = "",
            service: str = "portal", sentinel_password: str = "", connect_timeout: float | None = None):
    """The one factory of Redis clients (web, worker, CLI, RADIUS API).

    - *sentinels* set: a client of the current primary of *service*, found through Sentinel
      (password and db from *url* if it has them; its host is ignored);
    - *url* ``redis+cluster://host:port``: a Redis Cluster client (``RedisCluster``);
    - otherwise one server at *url* (``redis://``, ``rediss://``, ``unix://``).

    Pools block up to ``4 × timeout`` for a free connection: redis-py's default pool raises when full.
    """
    common = dict(
        client_name=CLIENT_NAME,  # CLIENT LIST (and the cluster pass's MONITOR check) tell the portal's connections apart
        socket_timeout=timeout,
        socket_connect_timeout=connect_timeout or timeout,
        health_check_interval=30,
        # One immediate retry on a broken connection: after a Redis restart (or a failover)
        # every pooled connection is stale, and each would otherwise fail once and re-open the breaker.
        retry=_RetryBroken(NoBackoff(), 1),
        retry_on_error=[redis.ConnectionError],
        # No CLIENT SETINFO on connect: two round trips fewer per new connection, which is what a
        # reconnect costs while a restarted server is loading (client_name still names us).
        driver_info=None,
    )
    if sentinels:
        options = _url_options(url)
        sentinel = redis.sentinel.Sentinel(
            parse_sentinels(sentinels), min_other_sentinels=0,
            sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": connect_timeout or timeout,
                             **({"password": sentinel_password} if sentinel_password else {})})
        return sentinel.master_for(service, connection_pool_class=_BlockingSentinelPool,
                                   max_connections=pool_size, timeout=timeout * 4, **options, **common)
    if url.startswith(CLUSTER_SCHEME):
        return _PortalCluster.from_url(
            "redis://" + url[len(CLUSTER_SCHEME):], max_connections=pool_size,
            socket_timeout=common["socket_timeout"], socket_connect_timeout=common["socket_connect_timeout"],
            health_check_interval=30, client_name=CLIENT_NAME)
    pool = redis.BlockingConnectionPool.from_url(url, max_connections=pool_size, timeout=timeout * 4, **common)
    return redis.Redis(connection_pool=pool)


#: Source of every script registered on a cluster client, by SHA1 (a handful, for the process's life).
_SCRIPT_SOURCES: dict[str, str] = {}


class _PortalCluster(redis.cluster.RedisCluster):
    """``RedisCluster`` whose "no node reachable" is a ConnectionError, as a dead single server's is.

    redis-py raises a bare ``RedisClusterException`` when it cannot reach any node; that class
    also covers client-side mistakes (keys of one transaction in several slots), which must
    stay loud, so only the unreachable case is retyped.
    """

    def execute_command(self, *args, **kwargs):
        with _unreachable_as_connection_error():
            return super().execute_command(*args, **kwargs)

    def pipeline(self, *args, **kwargs):
        pipe = super().pipeline(*args, **kwargs)
        execute = pipe.execute

        def guarded(*a, **k):
            with _unreachable_as_connection_error():
                return execute(*a, **k)

        pipe.execute = guarded

        # redis-py's ClusterPipeline refuses EVAL and EVALSHA; queued as a plain EVAL the script
        # is routed by its KEYS (which share one slot: the portal's scripts take hash-tagged keys).
        # EVAL with the source, not EVALSHA: a node that never saw the script cannot answer
        # NOSCRIPT in the middle of a pipeline.
        def eval_(script, numkeys, *keys_and_args):
            return pipe.execute_command("EVAL", script, numkeys, *keys_and_args)

        def evalsha(sha, numkeys, *keys_and_args):
            source = _SCRIPT_SOURCES.get(sha)
            if source is None:  # a SHA computed by the caller (limits.py), which handles NOSCRIPT itself
                return pipe.execute_command("EVALSHA", sha, numkeys, *keys_and_args)
            return eval_(source, numkeys, *keys_and_args)

        pipe.eval, pipe.evalsha = eval_, evalsha
        # PFCOUNT is refused in cluster pipelines too; keys of one slot are fine (CROSSSLOT otherwise).
        pipe.pfcount = lambda *keys: pipe.execute_command("PFCOUNT", *keys)
        return pipe

    def register_script(self, script):
        """A Script as redis-py makes it, remembered so a pipeline can send its source."""
        registered = super().register_script(script)
        _SCRIPT_SOURCES[registered.sha] = registered.script
        return registered


class _unreachable_as_connection_error:
    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if (kind is not None and issubclass(kind, redis.exceptions.RedisClusterException)
                and not issubclass(kind, redis.exceptions.CrossSlotTransactionError)
                and "cannot be connected" in str(error)):
            raise redis.ConnectionError(str(error)) from error
        return False


def _url_options(url: str) -> dict:
    """Password, user and db from a ``redis://`` URL, for the primary's connections under Sentinel."""
    if not url:
        return {}
    parsed = redis.connection.parse_url(url)
    return {key: parsed[key] for key in ("username", "password", "db") if parsed.get(key) is not None}


def is_cluster(client) -> bool:
    """True for a Redis Cluster client."""
    return hasattr(client, "get_node_from_key")


def disconnect(client) -> None:
    """Drop a client's pooled connections (every node's, on a cluster)."""
    if is_cluster(client):
        for node in client.get_nodes():
            if node.redis_connection is not None:
                node.redis_connection.connection_pool.disconnect()
    else:
        client.connection_pool.disconnect()


def client_for(config, *, timeout: float | None = None, pool_size: int | None = None):
    """A client from an app's config (``REDIS_URL``, ``REDIS_SENTINELS``…); *timeout* overrides the web's."""
    return connect(config["REDIS_URL"], pool_size=pool_size or config["REDIS_POOL_SIZE"],
                   timeout=timeout or config["REDIS_TIMEOUT"],
                   connect_timeout=config["REDIS_TIMEOUT"] * 4 if timeout else None,
                   sentinels=config.get("REDIS_SENTINELS", ""), service=config.get("REDIS_SERVICE", "portal"),
                   sentinel_password=config.get("REDIS_SENTINEL_PASSWORD", ""))


def init_app(app: Flask) -> None:
    """Attach a client and a breaker for ``REDIS_URL`` (or ``REDIS_SENTINELS``) to *app*."""
    if not app.config["REDIS_URL"] and not app.config.get("REDIS_SENTINELS"):
        raise RuntimeError("PORTAL_REDIS_URL is not set: use `make run` for the embedded Redis")
    app.extensions[EXTENSION] = (client_for(app.config), Breaker(app.config["REDIS_RETRY_AFTER"]))


def get_redis() -> redis.Redis:
    """Return the app's Redis client, or raise RedisUnavailable while the breaker is open."""
    client, breaker = current_app.extensions[EXTENSION]
    if breaker.open:
        raise RedisUnavailable("circuit open")
    return client


def raw_client() -> redis.Redis:
    """Return the app's Redis client whatever the breaker says (CLI and worker)."""
    return current_app.extensions[EXTENSION][0]


def report_failure() -> None:
    """Open the breaker after a Redis error seen by a caller, and drop pooled connections."""
    client, breaker = current_app.extensions[EXTENSION]
    # Callers report RedisUnavailable (the breaker itself) as a failure too; re-tripping on
    # those would keep the breaker open for as long as requests keep coming.
    if not breaker.open:
        breaker.trip()
        disconnect(client)


def report_success() -> None:
    """Close the breaker (a call went through)."""
    current_app.extensions[EXTENSION][1].reset()


class WriteRefusedError(redis.ResponseError):
    """Redis is up but refuses writes for now: ``MISCONF`` (disk full, AOF failing) or ``NOREPLICAS``."""


class NotReplicatedError(WriteRefusedError):
    """The primary took a write but fewer replicas than required confirmed it (WAIT) in time."""

    def __init__(self, message: str, *, created: bool = False):
        super().__init__(message)
        self.created = created


# redis-py has classes for READONLY, OOM, LOADING and MASTERDOWN but none for these two; its
# parsers look an error's first word up in this table, so registering them types the reply.
for _prefix in ("MISCONF", "NOREPLICAS"):
    redis._parsers.base.BaseParser.EXCEPTION_CLASSES.setdefault(_prefix, WriteRefusedError)

_REFUSAL_IN_SCRIPT = re.compile(r"(?:^|[\s:-])(OOM|READONLY|MISCONF|NOREPLICAS|LOADING|MASTERDOWN)\b")


def as_refusal(error: redis.ResponseError) -> Exception:
    """Type a Lua script's error that wraps a refusal (``…: -OOM command not allowed``).

    Inside ``EVAL`` the server reports a refused write as a script error, not with the
    refusal's own prefix, so the parser cannot type it; the text still names it.
    """
    if isinstance(error, DOWN_ERRORS) or not _REFUSAL_IN_SCRIPT.search(str(error)):
        return error
    return WriteRefusedError(str(error))


#: Errors that mean "Redis is not there right now", or cannot take a write here and now: a
#: replica after a failover (READONLY), a full memory (OOM), a failing disk (MISCONF). Requests
#: take their fail-open path for all of them, as for a dead server.
DOWN_ERRORS = (redis.ConnectionError, redis.TimeoutError, RedisUnavailable, OSError,
               redis.exceptions.ReadOnlyError, redis.exceptions.OutOfMemoryError,
               redis.exceptions.MasterDownError, redis.exceptions.ClusterDownError, WriteRefusedError)
