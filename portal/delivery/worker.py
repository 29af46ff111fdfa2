"""The delivery worker: every complaint from the province stream to each of its channels, once.

Lifecycle of one worker process (``flask --app portal deliver``):

1. Join the consumer group ``deliver`` on ``portal:{p51}:complaints`` (created when missing) under
   a stable consumer name (``<hostname>-1``), so a restarted worker finds its own pending entries.
2. Each turn starts with housekeeping: replay the local spool into Redis (complaints accepted while
   Redis was down), move due retries back into the stream, reclaim entries another consumer left
   idle longer than ``claim_idle`` (XAUTOCLAIM: that worker died), and erase expired personal data.
3. Read this consumer's own pending entries first (after a crash or a Redis outage), then new ones
   (XREADGROUP ``>``, blocking at most ``block`` seconds).
4. Deliver one entry: lock the complaint, load its record, route it to its channels and send to
   every channel that has not taken it yet, with the tracking number as the idempotency key. Each
   success is recorded per channel at once, so no retry resends to a channel that already has it.
5. Settle, in one MULTI with XACK + XDEL of the entry:
   - every channel done: status ``forwarded`` (with LAPOR!'s id and link), retention clock starts;
   - a temporary failure: a retry after the backoff of ``Retry``, unless attempts are exhausted;
   - a permanent failure (4xx) or exhausted attempts: a dead letter for the operators.
   A crash before this step leaves the entry pending; step 2 or 3 picks it up again and the
   idempotency key plus the per-channel record keep it at one copy per receiver.

SIGTERM and SIGINT set a flag: the worker finishes the entry in hand, then exits. SIGKILL loses
nothing: the entry stays pending and is reclaimed.
"""
from __future__ import annotations

import logging
import random
import signal
import threading
import time
from typing import Callable

import redis

from ..complaints import store
from ..crypto import InvalidToken
from ..redis import DOWN_ERRORS
from . import payload as payloads
from . import retention, state
from .channels import DeliveryError, PermanentError, TemporaryError
from .settings import Settings

log = logging.getLogger(__name__)


class Forwarder:
    """Consumes one province's complaint stream and delivers each complaint to its channels."""

    GROUP = state.GROUP
    BATCH = 10

    def __init__(self, *, connection: redis.Redis, crypto, settings: Settings, province: str, consumer: str,
                 public_url: str, retention_days: float, replay: Callable[[], int] | None = None,
                 spool_pending: Callable[[], bool] | None = None):
        self.redis, self.crypto, self.settings = connection, crypto, settings
        self.province, self.consumer, self.public_url = province, consumer, public_url
        self.retention_days = retention_days
        self.replay, self.spool_pending = replay, spool_pending
        self.keys = state.keys(province)
        self.rng = random.Random()
        self._stop = False
        self._pending_from = "0"  # read own pending entries first; None once they are done
        self._next_spool = self._next_purge = 0.0

    # -- the loop -----------------------------------------------------------------------------

    def run(self, *, burst: bool = False, timeout: float | None = None) -> int:
        """Deliver until SIGTERM (or, with *burst*, until nothing is left); return entries handled."""
        previous = self._install_signals()
        deadline = None if timeout is None else time.monotonic() + timeout
        handled = 0
        log.info("worker %s: delivering %s to %d channel(s)", self.consumer, self.keys["stream"],
                 len(self.settings.channels))
        try:
            while not self._stop:
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"worker {self.consumer}: queue not drained in {timeout} s")
                try:
                    self.redis.hset(f"portal:{{p{self.province}}}:workers", self.consumer, int(time.time()))
                    done = self.work_once(block=0.05 if burst else self.settings.block)
                    if burst and done == 0 and self.idle():
                        break
                except DOWN_ERRORS as error:
                    log.warning("worker %s: Redis unavailable (%s); retrying", self.consumer, type(error).__name__)
                    self._pending_from = "0"
                    time.sleep(0.2 if burst else 1.0)
                    continue
                handled += done
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        log.info("worker %s: stopped after %d entries", self.consumer, handled)
        return handled

    def work_once(self, *, block: float) -> int:
        """One turn: housekeeping, then deliver what there is to read; return entries handled."""
        self.ensure_group()
        self.housekeeping(time.time())
        if not self.settings.channels:
            # Not configured yet (e.g. `make run`): complaints wait in the stream, none is dead-lettered.
            time.sleep(block)
            return 0
        entries = self.reclaim() or self.read(block=block)
        for entry_id, fields in entries:
            if self._stop:
                break
            self.process(entry_id, fields)
        return len(entries)

    def stop(self, *_args) -> None:
        """Ask the loop to exit after the entry in hand."""
        if not self._stop:
            log.info("worker %s: stopping after the current entry", self.consumer)
        self._stop = True

    def idle(self) -> bool:
        """True when nothing is queued, pending, scheduled or spooled."""
        if self.spool_pending and self.spool_pending():
            return False
        if not self.settings.channels:
            return True
        return self.redis.xlen(self.keys["stream"]) == 0 and self.redis.zcard(self.keys["retry"]) == 0

    def _install_signals(self) -> dict:
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {signum: signal.signal(signum, self.stop) for signum in (signal.SIGTERM, signal.SIGINT)}

    # -- steps 1-3 ----------------------------------------------------------------------------

    def ensure_group(self) -> None:
        """Create the consumer group (and the stream) if they do not exist yet."""
        if getattr(self, "_group_ok", False):
            return
        try:
            self.redis.xgroup_create(self.keys["stream"], self.GROUP, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._group_ok = True

    def housekeeping(self, now: float) -> None:
        """Spool replay, due retries, expired personal data (each on its own schedule)."""
        if self.replay and now >= self._next_spool:
            self._next_spool = now + self.settings.spool_every
            moved = self.replay()
            if moved:
                log.info("worker %s: moved %d spooled record(s) into Redis", self.consumer, moved)
        state.move_due(self.redis, self.province, now=now)
        if now >= self._next_purge:
            self._next_purge = now + self.settings.purge_every
            retention.purge_expired(self.redis, self.province, retention_days=self.retention_days, now=now)

    def reclaim(self) -> list:
        """Take over entries idle longer than ``claim_idle`` (their worker died)."""
        reply = self.redis.xautoclaim(self.keys["stream"], self.GROUP, self.consumer,
                                      min_idle_time=int(self.settings.claim_idle * 1000),
                                      start_id="0-0", count=self.BATCH)
        entries = self._live(reply[1])
        if entries:
            log.info("worker %s: reclaimed %d idle entr(ies)", self.consumer, len(entries))
        return entries

    def read(self, *, block: float) -> list:
        """Own pending entries first, then new ones."""
        if self._pending_from is not None:
            reply = self.redis.xreadgroup(self.GROUP, self.consumer, {self.keys["stream"]: self._pending_from},
                                          count=self.BATCH)
            raw = reply[0][1] if reply else []
            if raw:
                self._pending_from = raw[-1][0]  # a cursor, so an entry we skip is not read forever
                return self._live(raw)
            self._pending_from = None
        reply = self.redis.xreadgroup(self.GROUP, self.consumer, {self.keys["stream"]: ">"},
                                      count=self.BATCH, block=max(1, int(block * 1000)))
        return self._live(reply[0][1]) if reply else []

    def _live(self, entries: list) -> list:
        """Drop (and acknowledge) pending references whose entry was deleted from the stream."""
        gone = [entry_id for entry_id, fields in entries if not fields]
        if gone:
            self.redis.xack(self.keys["stream"], self.GROUP, *gone)
        return [(entry_id, fields) for entry_id, fields in entries if fields]

    # -- steps 4-5 ----------------------------------------------------------------------------

    def process(self, entry_id: bytes, fields: dict) -> None:
        """Deliver one stream entry, holding the complaint's lock."""
        tracking = (fields.get(b"tracking") or b"").decode()
        if not tracking:
            self._settle(entry_id)
            return
        keys = state.keys(self.province, tracking)
        owner = f"{self.consumer}/{entry_id.decode()}"
        # Another live worker may hold it (a reclaim raced a slow send); it stays pending for later.
        if not self.redis.set(keys["lock"], owner, nx=True, px=int(self.settings.claim_idle * 1000)):
            log.info("complaint %s: busy in another worker, left pending", tracking)
            return
        try:
            self.deliver(entry_id, tracking, keys)
        finally:
            state.unlock(self.redis, keys["lock"], owner)

    def deliver(self, entry_id: bytes, tracking: str, keys: dict) -> None:
        """Send a complaint to each of its channels that does not have it yet, then settle."""
        record = store.read(self.redis, self.province, tracking)
        if record is None:
            log.error("complaint %s: no record; entry %s dropped", tracking, entry_id.decode())
            self._settle(entry_id)
            return
        channels = [c for c in self.settings.channels if c.route.matches(record)]
        if not channels:
            self._dead(entry_id, tracking, channel="", reason="no channel routes this complaint", attempts=0)
            return
        done = state.delivered_channels(self.redis, self.province, tracking)
        todo = [c for c in channels if c.name not in done]
        if not todo:
            self._complete(entry_id, tracking)
            return
        attempt = self.redis.hincrby(keys["state"], "attempts", 1)
        self.redis.zadd(keys["undelivered"], {tracking: float(record.get("created_at") or time.time())}, nx=True)
        try:
            body = payloads.build(record, self.crypto, public_url=self.public_url)
        except (payloads.ErasedError, InvalidToken, ValueError):
            self._dead(entry_id, tracking, channel="", reason="cannot unseal the complaint", attempts=attempt)
            return
        permanent = temporary = None
        for channel in todo:
            try:
                receipt = self._send(channel, body, tracking)
            except PermanentError as error:
                permanent = (channel.name, error)
                continue
            except TemporaryError as error:
                temporary = (channel.name, error)
                continue
            self.redis.hset(keys["state"], f"ch:{channel.name}", f"{time.time():.3f}")
            if receipt.remote_id or receipt.url:
                self.redis.hset(keys["record"], mapping={"lapor_id": receipt.remote_id, "lapor_url": receipt.url})
            log.info("complaint %s delivered to %s (attempt %d)", tracking, channel.name, attempt)
        del body  # the unsealed text lives no longer than the sends
        if permanent:
            name, error = permanent
            self._dead(entry_id, tracking, channel=name, reason=error.detail, attempts=attempt, code=error.code)
        elif temporary:
            name, error = temporary
            if self.settings.retry.exhausted(attempt):
                self._dead(entry_id, tracking, channel=name, reason=f"retries exhausted ({error.detail})",
                           attempts=attempt, code=error.code)
            else:
                self._schedule(entry_id, tracking, attempt, name, error)
        else:
            self._complete(entry_id, tracking)

    def _send(self, channel, body: dict, tracking: str):
        try:
            return channel.send(body, key=tracking)
        except DeliveryError as error:
            log.warning("complaint %s: %s failed: %s", tracking, channel.name, error.detail)
            raise
        except Exception as error:  # a channel bug must not kill the worker; retried, then dead-lettered
            log.exception("complaint %s: %s raised %s", tracking, channel.name, type(error).__name__)
            raise TemporaryError(type(error).__name__) from None

    def _settle(self, entry_id: bytes, pipe=None) -> None:
        target = pipe if pipe is not None else self.redis.pipeline(transaction=True)
        target.xack(self.keys["stream"], self.GROUP, entry_id)
        target.xdel(self.keys["stream"], entry_id)
        if pipe is None:
            target.execute()

    def _complete(self, entry_id: bytes, tracking: str) -> None:
        now = time.time()
        state.advance(self.redis, self.province, tracking, "forwarded")
        keys = state.keys(self.province, tracking)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(keys["record"], "delivered_at", f"{now:.3f}")
            pipe.zadd(keys["retention"], {tracking: now}, nx=True)
            pipe.zrem(keys["undelivered"], tracking)
            self._settle(entry_id, pipe)
            pipe.execute()
        log.info("complaint %s forwarded", tracking)

    def _schedule(self, entry_id: bytes, tracking: str, attempt: int, channel: str, error) -> None:
        delay = self.settings.retry.delay(attempt, self.rng)
        keys = state.keys(self.province, tracking)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(keys["retry"], {tracking: time.time() + delay})
            pipe.hset(keys["state"], mapping={"last_error": f"{channel}: {error.detail}"})
            self._settle(entry_id, pipe)
            pipe.execute()
        log.info("complaint %s: attempt %d failed on %s, retry in %.1f s", tracking, attempt, channel, delay)

    def _dead(self, entry_id: bytes, tracking: str, *, channel: str, reason: str, attempts: int,
              code: int | None = None) -> None:
        keys = state.keys(self.province, tracking)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(keys["dead"], state.dead_entry(tracking, channel=channel, reason=reason,
                                                     attempts=attempts, code=code))
            pipe.zrem(keys["retry"], tracking)
            pipe.zrem(keys["undelivered"], tracking)
            pipe.hset(keys["state"], mapping={"last_error": f"{channel}: {reason}"})
            self._settle(entry_id, pipe)
            pipe.execute()
        log.error("complaint %s: dead letter (%s, %s, after %d attempt(s))", tracking, channel or "-", reason, attempts)
