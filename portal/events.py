"""Impressions, complaints and grants, recorded for the results pages.

Each event goes to the stream ``portal:events`` (capped) and to a per-site,
per-day counter hash ``portal:stats:<site>:<yyyymmdd>`` whose fields are
``<event>:<campaign>:<lang>``. Events carry the pseudonymous device id, never
the MAC or IP. When Redis is down, events go to the local spool and are
counted when it comes back.

A request does not write its event itself: :func:`record` puts it in the
process's buffer, and a background thread writes what gathered every
``EVENT_FLUSH_SECONDS`` in one pipeline (``add_to`` per event, so the schema
is the same). No resident page waits for an event to reach Redis; a crash of
the process or the machine loses at most that interval's events (README,
"Speed"). ``EVENT_FLUSH_SECONDS = 0`` writes each event at once.
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time

from flask import current_app

log = logging.getLogger(__name__)

EVENTS = "portal:events"
STATS = "portal:stats:{}:{}"
STREAM_MAXLEN = 500_000
STATS_TTL = 400 * 86400
KINDS = ("impression", "complaint", "grant")
WITA = 8 * 3600  # Bali is UTC+8 all year


def make_event(kind: str, *, site_id: str, campaign: str, lang: str, device: str, at: float | None = None) -> dict:
    """Return one event as a flat dict of strings."""
    return {
        "kind": kind,
        "site": site_id or "unknown",
        "campaign": campaign or "",
        "lang": lang or "",
        "device": device or "",
        "at": f"{at or time.time():.3f}",
    }


def add_to(pipe, event: dict) -> None:
    """Queue the commands that record *event* on a pipeline."""
    day = time.strftime("%Y%m%d", time.gmtime(float(event["at"]) + WITA))
    stats = STATS.format(event["site"], day)
    pipe.xadd(EVENTS, event, maxlen=STREAM_MAXLEN, approximate=True)
    pipe.hincrby(stats, f"{event['kind']}:{event['campaign']}:{event['lang']}", 1)
    pipe.expire(stats, STATS_TTL)


def add_batch_to(pipe, events: list[dict]) -> None:
    """Queue the commands that record *events*: one stream entry each, each counter bumped once by its sum."""
    counts: dict[tuple[str, str], int] = {}
    for event in events:
        day = time.strftime("%Y%m%d", time.gmtime(float(event["at"]) + WITA))
        pipe.xadd(EVENTS, event, maxlen=STREAM_MAXLEN, approximate=True)
        field = (STATS.format(event["site"], day), f"{event['kind']}:{event['campaign']}:{event['lang']}")
        counts[field] = counts.get(field, 0) + 1
    for (stats, name), count in counts.items():
        pipe.hincrby(stats, name, count)
    for stats in {stats for stats, _ in counts}:
        pipe.expire(stats, STATS_TTL)


def replay_event(client, event: dict) -> None:
    """Write a spooled event to Redis."""
    with client.pipeline(transaction=False) as pipe:
        add_to(pipe, event)
        pipe.execute()


def spool_event(event: dict) -> None:
    """Keep *event* locally while Redis is down."""
    current_app.extensions["portal_spool"].append("event", event)


class EventBuffer:
    """Events of one app in one process, written to Redis in batches by a daemon thread."""

    def __init__(self, client, spool, interval: float, *, limit: int = 5000):
        self.client, self.spool, self.interval, self.limit = client, spool, interval, limit
        self._events: list[dict] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pid = 0  # the thread does not survive a fork (gunicorn workers): started per process

    def add(self, event: dict) -> None:
        """Buffer *event*; the thread writes it within ``interval`` seconds."""
        with self._lock:
            self._events.append(event)
            full = len(self._events) >= self.limit
            if self.interval > 0 and self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="portal-events", daemon=True).start()
                atexit.register(self.flush)
        if full:
            self._wake.set()

    def pending(self) -> int:
        """How many events wait to be written."""
        return len(self._events)

    def flush(self) -> int:
        """Write the buffered events in one pipeline (the spool if Redis cannot take them)."""
        with self._lock:
            batch, self._events = self._events, []
        if not batch:
            return 0
        from .redis import DOWN_ERRORS

        try:
            with self.client.pipeline(transaction=False) as pipe:
                add_batch_to(pipe, batch)
                pipe.execute()
        except DOWN_ERRORS as error:
            log.warning("%d event(s) spooled: Redis unreachable (%s)", len(batch), type(error).__name__)
            try:
                for event in batch:
                    self.spool.append("event", event)
            except OSError:
                log.error("could not spool %d event(s)", len(batch))
        return len(batch)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # a surprise must not end the thread: later events still need it
                log.exception("event flush failed")


def buffer():
    """The app's event buffer (created on first use)."""
    found = current_app.extensions.get("portal_event_buffer")
    if found is None:
        from .redis import raw_client

        found = current_app.extensions["portal_event_buffer"] = EventBuffer(
            raw_client(), current_app.extensions["portal_spool"],
            float(current_app.config["EVENT_FLUSH_SECONDS"]))
    return found


def record(event: dict) -> None:
    """Count *event*: buffered for the background write, or at once with ``EVENT_FLUSH_SECONDS = 0``."""
    events = buffer()
    events.add(event)
    if events.interval <= 0:
        events.flush()
