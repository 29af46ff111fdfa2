"""Values read from Redis, kept in the worker until Redis says they changed.

The fast lane (``portal/fast_lane.py``) reads the same few keys again and again: a resident's
session on every page of the visit, a complaint record on every look at its status. Asking Redis
each time is most of such a page's cost (issue 14). This cache keeps what was read, in the
worker's memory, and is told by Redis itself the moment a key changes: Redis's server-assisted
client-side caching in broadcast mode (``CLIENT TRACKING ON BCAST PREFIX …``), whose
invalidation messages arrive as RESP3 pushes on one listening connection per worker process.

redis-py has client-side caching of its own, but only for Redis 7.4 and newer; the portal runs
on 6.2 and up (the embedded server is 6.2), so this is the small part it needs, on redis-py's
own connection and push parsing.

Why a value here is never staler than Redis by more than a moment:

- Every lookup first takes whatever invalidations have arrived (a ``select`` on the listener's
  socket, no round trip). Redis queues a key's invalidation while it runs the write and sends it
  in the same turn of its event loop as the writer's reply, so a change acknowledged to one worker
  is on every other worker's socket before the resident's next request (a whole HTTP exchange
  later) can reach it.
- A value read just before it changed is not kept: :meth:`TrackedCache.put` drops it when an
  invalidation of that key (or a flush) came in since the read began (:meth:`TrackedCache.mark`).
- A value is kept at most ``max_age`` seconds, and never past the key's own expiry (its PTTL).
- The listener is checked with a PING every ``heartbeat`` seconds by a daemon thread that also
  drains it while the worker is idle. A listener that broke, or did not answer its last PING in
  time, empties the cache, and nothing is kept until a new listener is tracking. So does
  :meth:`TrackedCache.reset`, which the lane calls whenever its own connection failed (a
  restart, a failover: the new primary has not been asked to track).

The cache holds values, never errors, and only for the key prefixes it tracks. It never writes.
"""
from __future__ import annotations

import logging
import os
import select
import threading
import time
import weakref
from typing import Any, Callable

import redis as redis_py

log = logging.getLogger(__name__)
MISSING = object()
RETRY_SECONDS = 5.0  # after a listener could not be opened, the next attempt


class TrackedCache:
    """A bounded map of Redis key -> value, emptied of each key as Redis reports it changed."""

    def __init__(self, connect: Callable[[], Any], prefixes: list[str], *, size: int = 8192,
                 max_age: float = 5.0, heartbeat: float = 1.0):
        self.connect, self.prefixes = connect, tuple(prefixes)
        self.size, self.max_age, self.heartbeat = size, max_age, heartbeat
        self.lock = threading.RLock()
        self.entries: dict[str, tuple[Any, float]] = {}
        self.seq = 0            # invalidations taken so far
        self.flushed_at = 0     # seq of the last time everything was dropped
        self.recent: dict[str, int] = {}  # key -> seq of its last invalidation (bounded)
        self.listener = None
        self.pid = 0
        self.retry_at = 0.0
        self.ping_due = 0.0
        self.pong_owed = False
        self.draining = False   # a thread is between reading the socket and applying what it read
        self.thread: threading.Thread | None = None
        self.stopped = threading.Event()

    # --- what the lane calls ------------------------------------------------------------------

    def get(self, key: str):
        """The value kept for *key*, or MISSING (also whenever the cache cannot vouch for it)."""
        if not self._quiet():
            with self.lock:
                if not self._live():
                    return MISSING
        found = self.entries.get(key)
        if found is None:
            return MISSING
        if found[1] <= time.monotonic():
            self.entries.pop(key, None)
            return MISSING
        return found[0]

    def mark(self) -> int | None:
        """A mark to pass to :meth:`put` for a read about to be made; None if nothing can be kept now."""
        if self._quiet():
            return self.seq
        with self.lock:
            return self.seq if self._live() else None

    def put(self, key: str, value, mark: int | None, ttl_ms: int = -1) -> None:
        """Keep *value*, read from Redis after *mark*, unless *key* changed since (or the cache broke)."""
        if mark is None or not key.startswith(self.prefixes):
            return  # a key outside the tracked prefixes would never be reported changed
        with self.lock:
            if not self._live() or self.flushed_at > mark or self.recent.get(key, -1) > mark:
                return
            lifetime = self.max_age if ttl_ms < 0 else min(self.max_age, ttl_ms / 1000)
            if lifetime <= 0:
                return
            if len(self.entries) >= self.size:
                self.entries.pop(next(iter(self.entries)))  # the oldest
            self.entries[key] = (value, time.monotonic() + lifetime)

    def reset(self) -> None:
        """Drop every value and the listener; the next lookup opens a new one (after a Redis failure)."""
        with self.lock:
            self._close()

    def stop(self) -> None:
        """Stop the drain thread and close the listener (tests, shutdown)."""
        self.stopped.set()
        self.reset()

    # --- the listener -------------------------------------------------------------------------

    def _quiet(self) -> bool:
        """True if a lookup may go on without the lock: nothing arrived, nothing being applied, no PING due.

        The lookup that matters most takes no lock: under gunicorn's threads, a lock held across
        the ``poll`` system call (which lets go of the GIL) made the threads queue behind each
        other. A thread that read the socket sets ``draining`` before it reads, so a lookup that
        finds the socket empty because of it waits on the lock for the invalidations to apply.
        """
        listener = self.listener
        if listener is None or self.draining or self.pid != os.getpid() or time.monotonic() >= self.ping_due:
            return False
        try:
            return not self._readable(listener)
        except (AttributeError, OSError, ValueError, TypeError):  # closed meanwhile by another thread
            return False

    @staticmethod
    def _readable(listener) -> bool:
        """True if *listener* has something to read, on its socket or already in its parser."""
        # select, not a poll object: that one refuses to be used by two threads at once.
        return bool(select.select((listener._sock,), (), (), 0)[0]) or listener._parser._reader.has_data()

    def _live(self) -> bool:
        """Take what the listener has; True if the cache may serve and keep values now."""
        if self.pid != os.getpid():  # a forked worker: the parent's socket is not ours
            self.listener, self.thread = None, None
            self._flush()
            self.pid = os.getpid()
        now = time.monotonic()
        if self.listener is None:
            if now < self.retry_at or not self._open(now):
                return False
        if not self._drain():
            return False
        if now >= self.ping_due:
            if self.pong_owed:  # the last PING went unanswered for a whole heartbeat
                log.warning("tracked cache: the invalidation listener stopped answering; dropped")
                self._close()
                return False
            try:
                self.listener.send_command("PING")
            except (redis_py.RedisError, OSError):
                self._close()
                return False
            self.pong_owed, self.ping_due = True, now + self.heartbeat
        return True

    def _open(self, now: float) -> bool:
        self._flush()
        connection = None
        try:
            connection = self.connect()
            connection.connect()
            connection._parser.set_invalidation_push_handler(self._invalidated)
            args = ["CLIENT", "TRACKING", "ON", "BCAST"]
            for prefix in self.prefixes:
                args += ["PREFIX", prefix]
            connection.send_command(*args)
            connection.read_response()
        except (redis_py.RedisError, OSError) as error:
            log.warning("tracked cache off for %.0f s: %s", RETRY_SECONDS, type(error).__name__)
            if connection is not None:
                connection.disconnect()
            self.retry_at = now + RETRY_SECONDS
            return False
        self.listener = connection
        self.ping_due, self.pong_owed = now + self.heartbeat, False
        self._flush()  # nothing read before tracking began may stay
        if self.thread is None:
            self.thread = threading.Thread(target=_idle_drain, args=(weakref.ref(self), self.stopped, self.heartbeat),
                                           name="tracked-cache", daemon=True)
            self.thread.start()
        return True

    def _drain(self) -> bool:
        """Apply every invalidation that has arrived; False (and everything dropped) if the listener broke."""
        self.draining = True
        try:
            while self._readable(self.listener):
                reply = self.listener.read_response(push_request=True, timeout=0, disconnect_on_error=False)
                if reply is not _PUSH:
                    self.pong_owed = False  # the only reply that is not a push: a PING's
        except redis_py.TimeoutError:
            return True  # a message cut in two: the rest comes with the next drain
        except (redis_py.RedisError, OSError, AttributeError) as error:
            log.warning("tracked cache: the invalidation listener broke (%s); dropped", type(error).__name__)
            self._close()
            return False
        finally:
            self.draining = False
        return True

    def _invalidated(self, push) -> object:
        """A push ``["invalidate", keys]``; keys None when the whole database was flushed."""
        self.seq += 1
        keys = push[1]
        if keys is None:
            self._flush()
            return _PUSH
        for key in keys:
            key = key.decode() if isinstance(key, bytes) else key
            self.entries.pop(key, None)
            self.recent[key] = self.seq
        if len(self.recent) > self.size:
            self.recent.clear()
            self.flushed_at = self.seq  # forgetting which keys changed: treat it as a flush
        return _PUSH

    def _flush(self) -> None:
        self.seq += 1
        self.flushed_at = self.seq
        self.entries.clear()
        self.recent.clear()

    def _close(self) -> None:
        self._flush()
        listener, self.listener = self.listener, None
        if listener is not None:
            try:
                listener.disconnect()
            except Exception:  # noqa: BLE001 - closing a broken socket must not fail a request
                pass

    def idle_drain(self) -> None:
        """What the drain thread does every half heartbeat: take invalidations, keep the heartbeat."""
        with self.lock:
            if self.listener is not None and self.pid == os.getpid():
                self._live()


def _idle_drain(cache_ref, stopped: threading.Event, heartbeat: float) -> None:
    """While no request looks, keep the cache's listener drained; ends with the cache (a weak reference)."""
    while not stopped.wait(heartbeat / 2):
        cache = cache_ref()
        if cache is None:
            return
        cache.idle_drain()
        del cache


_PUSH = object()  # what an invalidation push reads as (a PING's reply is anything else)
