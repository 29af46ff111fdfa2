"""The delivery worker: every complaint from the province stream to each of its channels, once.

Lifecycle of one worker process (``flask --app portal deliver``):

1. Join the consumer group ``deliver`` on ``portal:{p51}:complaints`` (created when missing) under
   a stable consumer name (``<hostname>-1``), so a restarted worker finds its own pending entries.
2. Each turn writes the heartbeat (``portal:{p51}:workers``), then housekeeping: replay the local
   spool into Redis (complaints accepted while Redis was down), move due retries back into the
   stream, erase expired personal data, settle the entries whose sends have all ended, and keep
   the locks of entries still in hand (their idle time too, so no other worker reclaims live work).
3. Take in as many entries as the channels have room for: entries another consumer left idle
   longer than ``claim_idle`` (XAUTOCLAIM: that worker died), this consumer's own pending entries
   (after a crash or a Redis outage), then new ones (XREADGROUP ``>``).
4. Start one entry: lock the complaint, load its record, route it to its channels and hand one
   send per channel that has not taken it yet to that channel's own thread pool (``concurrency``
   sends in flight per channel, as many again queued), with the tracking number as the
   idempotency key. A channel whose pool is full is *deferred*: the complaint comes back for it
   after a short wait, without counting an attempt, so a slow receiver never holds up the others
   or the next complaint. Each success is recorded per channel at once, from the sending thread,
   so no retry resends to a channel that already has it.
5. When every send of the entry has ended, settle it in one MULTI with XACK + XDEL:
   - every channel done: status ``forwarded`` (with LAPOR!'s id and link), retention clock starts;
   - a temporary failure (or a deferred channel): a retry after the backoff of ``Retry``, unless
     attempts are exhausted;
   - a permanent failure (4xx) or exhausted attempts: a dead letter for the operators.
   A crash before this step leaves the entry pending; step 3 picks it up again and the
   idempotency key plus the per-channel record keep it at one copy per receiver.

SIGTERM and SIGINT set a flag: the worker takes no new entry, cancels sends not yet begun, lets
the sends under way finish, settles what ended and exits; an entry with a cancelled send stays
pending for the next worker. SIGKILL loses nothing: the entries stay pending and are reclaimed.
"""
from __future__ import annotations

import logging
import os
import queue
import random
import signal
import threading
import time
from collections import Counter
from contextlib import suppress
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import redis

from .. import events
from ..complaints import store
from ..crypto import InvalidToken
from ..redis import DOWN_ERRORS
from . import payload as payloads
from . import retention, state
from .channels import DeliveryError, PermanentError, TemporaryError, erase_copies
from .settings import Settings

log = logging.getLogger(__name__)

#: Sends a channel may have waiting for a free thread, per thread: enough to keep it busy
#: between two turns of the loop, few enough that a slow channel defers instead of piling up.
QUEUED_PER_THREAD = 1
CANCELLED = "cancelled"


@dataclass(eq=False)
class Job:
    """One stream entry in hand: its complaint's sends, one per channel, and how they ended."""

    entry_id: bytes
    tracking: str
    owner: str                       # the value of the complaint's lock
    attempt: int
    body: dict | None                # the unsealed payload, dropped once the sends have ended
    waiting: dict[str, Future] = field(default_factory=dict)  # channel name -> its send
    deferred: list[str] = field(default_factory=list)         # channels that had no room
    permanent: tuple | None = None   # (channel, PermanentError)
    temporary: tuple | None = None   # (channel, TemporaryError)
    cancelled: bool = False          # a send was cancelled by a stop: leave the entry pending
    settled: bool = False
    touched: float = field(default_factory=time.time)


class Forwarder:
    """Consumes one province's complaint stream and delivers each complaint to its channels."""

    GROUP = state.GROUP
    BATCH = 16

    def __init__(self, *, connection: redis.Redis, crypto, settings: Settings, province: str, consumer: str,
                 public_url: str, retention_days: float, replay: Callable[[], int] | None = None,
                 spool_pending: Callable[[], bool] | None = None, alive_file: str | None = None):
        self.redis, self.crypto, self.settings = connection, crypto, settings
        self.province, self.consumer, self.public_url = province, consumer, public_url
        self.retention_days = retention_days
        self.replay, self.spool_pending = replay, spool_pending
        self.alive_file = alive_file  # touched every turn, Redis or not: a liveness probe reads its age
        self.keys = state.keys(province)
        self.rng = random.Random()
        self._stop = False
        self._pending_from = "0"  # read own pending entries first; None once they are done
        self._next_spool = self._next_purge = 0.0
        self.jobs: dict[bytes, Job] = {}        # entries in hand
        self.ready: list[Job] = []              # entries whose sends have all ended, to settle
        self.load: Counter = Counter()          # channel name -> sends queued or running
        self.pools: dict[str, ThreadPoolExecutor] = {}
        # Ends of sends, put by the channel threads, taken by the loop (the only one that settles).
        self.ended: queue.SimpleQueue = queue.SimpleQueue()

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
                self._touch_alive()
                try:
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
            try:
                self.finish_in_flight()
            finally:
                for signum, handler in previous.items():
                    signal.signal(signum, handler)
        log.info("worker %s: stopped after %d entries", self.consumer, handled)
        return handled

    def _touch_alive(self) -> None:
        if self.alive_file:
            with suppress(OSError):  # a full or read-only disk must not stop deliveries
                os.makedirs(os.path.dirname(self.alive_file), exist_ok=True)
                with open(self.alive_file, "a"):
                    os.utime(self.alive_file)

    def work_once(self, *, block: float) -> int:
        """One turn: heartbeat, housekeeping, settle, then start what the channels have room for."""
        self.ensure_group()
        now = time.time()
        state.heartbeat(self.redis, self.province, self.consumer, now=now)
        self.housekeeping(now)
        self.collect()
        self.settle_ready()
        if not self.settings.channels:
            # Not configured yet: complaints wait in the stream, none is dead-lettered.
            time.sleep(block)
            return 0
        self.keep_in_hand(now)
        started = 0
        room = self.room()
        if room and not self._stop:
            # With sends in flight, do not sit in a blocking read: their ends must be settled.
            entries = self.reclaim(room) or self.read(block=0 if self.jobs else block, count=room)
            for entry_id, fields in entries:
                if self._stop:
                    break  # the rest stay pending in this consumer's name, read first next time
                if entry_id not in self.jobs:
                    self.process(entry_id, fields)
                    started += 1
        if self.jobs and not started:
            self.collect(timeout=min(block, 0.2))  # wakes at the first send that ends
            self.settle_ready()
        return started

    def stop(self, *_args) -> None:
        """Ask the loop to exit once the sends in flight have ended."""
        if not self._stop:
            log.info("worker %s: stopping after the deliveries in flight", self.consumer)
        self._stop = True

    def idle(self) -> bool:
        """True when nothing is in hand, queued, scheduled or spooled."""
        if self.jobs or self.ready:
            return False
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
            retention.purge_expired(self.redis, self.province, retention_days=self.retention_days, now=now,
                                    on_erase=lambda tracking: erase_copies(self.settings.channels, tracking))

    def keep_in_hand(self, now: float) -> None:
        """Extend the locks and reset the idle time of entries in hand for a third of ``claim_idle``."""
        every = self.settings.claim_idle / 3
        stale = [job for job in self.jobs.values() if not job.settled and now - job.touched >= every]
        if not stale:
            return
        held = [(job.tracking, job.owner, job.entry_id.decode()) for job in stale]
        kept = state.keep(self.redis, self.province, self.consumer, held, ttl=self.settings.claim_idle)
        for job in stale:
            job.touched = now
        if kept < len(stale):
            # Their locks expired (Redis was away too long): another worker may send too; the key absorbs it.
            log.warning("worker %s: %d entr(ies) in hand lost their lock", self.consumer, len(stale) - kept)

    def room(self) -> int:
        """How many entries to take in now: the most that the least busy channel can queue."""
        return max(0, min(self.BATCH, max(self.capacity(c.name) for c in self.settings.channels)))

    def capacity(self, name: str) -> int:
        """Sends channel *name* can take before it is full (running plus queued)."""
        return self.settings.limit(name) * (1 + QUEUED_PER_THREAD) - self.load[name]

    def reclaim(self, count: int | None = None) -> list:
        """Take over entries idle longer than ``claim_idle`` (their worker died)."""
        reply = self.redis.xautoclaim(self.keys["stream"], self.GROUP, self.consumer,
                                      min_idle_time=int(self.settings.claim_idle * 1000),
                                      start_id="0-0", count=count or self.BATCH)
        entries = [(entry_id, fields) for entry_id, fields in self._live(reply[1]) if entry_id not in self.jobs]
        if entries:
            log.info("worker %s: reclaimed %d idle entr(ies)", self.consumer, len(entries))
        return entries

    def read(self, *, block: float, count: int | None = None) -> list:
        """Own pending entries first, then new ones (*block* 0: do not wait)."""
        count = count or self.BATCH
        if self._pending_from is not None:
            reply = self.redis.xreadgroup(self.GROUP, self.consumer, {self.keys["stream"]: self._pending_from},
                                          count=count)
            raw = reply[0][1] if reply else []
            if raw:
                self._pending_from = raw[-1][0]  # a cursor, so an entry we skip is not read forever
                return self._live(raw)
            self._pending_from = None
        # BLOCK 0 would wait forever: no BLOCK at all is "answer now".
        wait = max(1, int(block * 1000)) if block > 0 else None
        reply = self.redis.xreadgroup(self.GROUP, self.consumer, {self.keys["stream"]: ">"},
                                      count=count, block=wait)
        return self._live(reply[0][1]) if reply else []

    def _live(self, entries: list) -> list:
        """Drop (and acknowledge) pending references whose entry was deleted from the stream."""
        gone = [entry_id for entry_id, fields in entries if not fields]
        if gone:
            self.redis.xack(self.keys["stream"], self.GROUP, *gone)
        return [(entry_id, fields) for entry_id, fields in entries if fields]

    # -- step 4 -------------------------------------------------------------------------------

    def process(self, entry_id: bytes, fields: dict) -> None:
        """Start one stream entry, holding the complaint's lock until it is settled."""
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
        job = None
        try:
            job = self.start(entry_id, tracking, keys, owner)
        finally:
            if job is None:  # settled at once (or failed before any send): nothing holds the lock
                with suppress(*DOWN_ERRORS):  # Redis gone: the lock expires by itself
                    state.unlock(self.redis, keys["lock"], owner)

    def start(self, entry_id: bytes, tracking: str, keys: dict, owner: str) -> Job | None:
        """Hand a complaint's sends to its channels' pools; None when it was settled at once."""
        record = store.read(self.redis, self.province, tracking)
        if record is None:
            log.error("complaint %s: no record; entry %s dropped", tracking, entry_id.decode())
            self._settle(entry_id)
            return None
        channels = [c for c in self.settings.channels if c.route.matches(record)]
        if not channels:
            self._dead(entry_id, tracking, channel="", reason="no channel routes this complaint", attempts=0)
            return None
        done = state.delivered_channels(self.redis, self.province, tracking)
        todo = [c for c in channels if c.name not in done]
        if not todo:
            self._complete(entry_id, tracking)
            return None
        self.redis.zadd(keys["undelivered"], {tracking: float(record.get("created_at") or time.time())}, nx=True)
        sendable = [c for c in todo if self.capacity(c.name) > 0]
        deferred = [c.name for c in todo if c not in sendable]
        if not sendable:
            self._defer(entry_id, tracking, deferred)
            return None
        attempt = self.redis.hincrby(keys["state"], "attempts", 1)
        try:
            body = payloads.build(record, self.crypto, public_url=self.public_url)
        except (payloads.ErasedError, InvalidToken, ValueError):
            self._dead(entry_id, tracking, channel="", reason="cannot unseal the complaint", attempts=attempt)
            return None
        job = Job(entry_id=entry_id, tracking=tracking, owner=owner, attempt=attempt, body=body, deferred=deferred)
        self.jobs[entry_id] = job
        for channel in sendable:
            self.load[channel.name] += 1
            future = self._pool(channel.name).submit(self._send_one, channel, job)
            job.waiting[channel.name] = future
            future.add_done_callback(lambda f, name=channel.name: self.ended.put((job, name, f)))
        return job

    def _pool(self, name: str) -> ThreadPoolExecutor:
        pool = self.pools.get(name)
        if pool is None:
            pool = self.pools[name] = ThreadPoolExecutor(self.settings.limit(name), thread_name_prefix=f"send-{name}")
        return pool

    def _send_one(self, channel, job: Job) -> DeliveryError | None:
        """In the channel's thread: send, and record a success at once; return the failure or None."""
        try:
            receipt = self._send(channel, job.body, job.tracking)
        except DeliveryError as error:
            return error
        keys = state.keys(self.province, job.tracking)
        try:
            self.redis.hset(keys["state"], f"ch:{channel.name}", f"{time.time():.3f}")
            if receipt.remote_id or receipt.url:
                self.redis.hset(keys["record"], mapping={"lapor_id": receipt.remote_id, "lapor_url": receipt.url})
        except DOWN_ERRORS as error:
            # Delivered but not recorded: the resend later is absorbed by the idempotency key.
            return TemporaryError(f"delivered, not recorded (Redis {type(error).__name__})")
        log.info("complaint %s delivered to %s (attempt %d)", job.tracking, channel.name, job.attempt)
        return None

    def _send(self, channel, body: dict, tracking: str):
        try:
            return channel.send(body, key=tracking)
        except DeliveryError as error:
            log.warning("complaint %s: %s failed: %s", tracking, channel.name, error.detail)
            raise
        except Exception as error:  # a channel bug must not kill the worker; retried, then dead-lettered
            log.exception("complaint %s: %s raised %s", tracking, channel.name, type(error).__name__)
            raise TemporaryError(type(error).__name__) from None

    # -- step 5 -------------------------------------------------------------------------------

    def collect(self, timeout: float = 0.0) -> None:
        """Take in the sends that ended (waiting up to *timeout* for the first); queue finished entries."""
        try:
            item = self.ended.get(timeout=timeout) if timeout > 0 else self.ended.get_nowait()
        except queue.Empty:
            return
        while True:
            job, name, future = item
            self.load[name] -= 1
            job.waiting.pop(name, None)
            if future.cancelled():
                job.cancelled = True
            else:
                outcome = future.result()  # _send_one returns its failure, it never raises
                if isinstance(outcome, PermanentError):
                    job.permanent = (name, outcome)
                elif isinstance(outcome, DeliveryError):
                    job.temporary = (name, outcome)
            if not job.waiting:
                job.body = None  # the unsealed text lives no longer than the sends
                self.ready.append(job)
            try:
                item = self.ended.get_nowait()
            except queue.Empty:
                return

    def settle_ready(self) -> None:
        """Settle every entry whose sends have all ended (a Redis outage leaves the rest for later)."""
        while self.ready:
            job = self.ready[0]
            if not job.settled:
                self.finish(job)
                job.settled = True  # before the unlock: a retry after an outage must not settle twice
            state.unlock(self.redis, state.keys(self.province, job.tracking)["lock"], job.owner)
            self.ready.pop(0)
            self.jobs.pop(job.entry_id, None)

    def finish(self, job: Job) -> None:
        """Settle one entry from how its sends ended."""
        entry_id, tracking, attempt = job.entry_id, job.tracking, job.attempt
        if job.cancelled:
            # Stopped before every channel had its turn: left pending, taken up again by the next worker.
            return
        if job.permanent:
            name, error = job.permanent
            self._dead(entry_id, tracking, channel=name, reason=error.detail, attempts=attempt, code=error.code)
        elif job.temporary:
            name, error = job.temporary
            if self.settings.retry.exhausted(attempt):
                self._dead(entry_id, tracking, channel=name, reason=f"retries exhausted ({error.detail})",
                           attempts=attempt, code=error.code)
            else:
                self._schedule(entry_id, tracking, attempt, name, error)
        elif job.deferred:
            self._defer(entry_id, tracking, job.deferred)
        else:
            self._complete(entry_id, tracking)

    def finish_in_flight(self) -> None:
        """On the way out: cancel sends not begun, wait for those under way, settle what ended."""
        for job in list(self.jobs.values()):
            for future in list(job.waiting.values()):
                future.cancel()
        while any(job.waiting for job in self.jobs.values()):
            self.collect(timeout=0.2)  # each send under way ends within its channel's timeout
        self.collect()
        for attempt in range(5):
            try:
                self.settle_ready()
                break
            except DOWN_ERRORS:
                time.sleep(0.5)
        if self.ready:
            log.warning("worker %s: %d entr(ies) left pending (Redis unavailable)", self.consumer, len(self.ready))
            self.ready.clear()
        self.jobs.clear()
        for pool in self.pools.values():
            pool.shutdown(wait=True)
        self.pools.clear()
        self.load.clear()

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
            first, *_ = pipe.execute()
        if first:  # counted once, even when a crash made us deliver twice
            funnel_step(self.redis, self.province, tracking, "delivered")
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

    def _defer(self, entry_id: bytes, tracking: str, channels: list[str]) -> None:
        # No attempt was made on these channels, so none is counted: the first backoff step, no more.
        delay = self.settings.retry.delay(1, self.rng)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self.keys["retry"], {tracking: time.time() + delay})
            self._settle(entry_id, pipe)
            pipe.execute()
        log.info("complaint %s: %s busy, back in %.1f s", tracking, ", ".join(channels), delay)

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


def funnel_step(client: redis.Redis, province: str, tracking: str, step: str) -> None:
    """Count a complaint's delivery or answer in the funnel; never fails the caller."""
    try:
        record = store.read(client, province, tracking) or {}
        if record:
            events.replay_event(client, events.from_record(step, record, province=province, client=client))
    except redis.RedisError as error:
        log.warning("funnel: %s of %s not counted (%s)", step, tracking, type(error).__name__)
