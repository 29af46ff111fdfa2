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
from flask import Flask, current_app
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


def connect(url: str, *, pool_size: int = 32, timeout: float = 0.5) -> redis.Redis:
    """Return a client on a blocking pool (redis-py's default pool raises when full)."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=pool_size,
        timeout=timeout * 4,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        # One immediate retry on a broken connection: after a Redis restart every pooled
        # connection is stale, and each would otherwise fail once and re-open the breaker.
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[redis.ConnectionError],
    )
    return redis.Redis(connection_pool=pool)


def init_app(app: Flask) -> None:
    """Attach a client and a breaker for ``REDIS_URL`` to *app*."""
    url = app.config["REDIS_URL"]
    if not url:
        raise RuntimeError("PORTAL_REDIS_URL is not set: use `make run` for the embedded Redis")
    app.extensions[EXTENSION] = (
        connect(url, pool_size=app.config["REDIS_POOL_SIZE"], timeout=app.config["REDIS_TIMEOUT"]),
        Breaker(app.config["REDIS_RETRY_AFTER"]),
    )


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
        client.connection_pool.disconnect()


def report_success() -> None:
    """Close the breaker (a call went through)."""
    current_app.extensions[EXTENSION][1].reset()


class WriteRefusedError(redis.ResponseError):
    """Redis is up but refuses writes for now: ``MISCONF`` (disk full, AOF failing) or ``NOREPLICAS``."""


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
               redis.exceptions.MasterDownError, WriteRefusedError)
