"""The scheduled retention job: raw events, delivered complaints and stale held complaints.

``flask results retention`` (deploy/systemd/portal-retention.timer, daily) removes:

- raw funnel events (stream ``portal:events``) older than ``EVENT_RETENTION_DAYS``: they carry
  a device pseudonym; the aggregate counters (no personal data) stay for 400 days;
- text, name, contact and device pseudonym of complaints delivered more than
  ``RETENTION_DAYS`` ago (portal.delivery.retention, also run by the worker), with local copies;
- the same of complaints held for review and never released within ``HELD_RETENTION_DAYS``.

It reports what it removed as counts; it never logs what was removed.
"""
from __future__ import annotations

import time

from ..complaints import store
from ..delivery import retention as delivery_retention
from ..events import EVENTS

#: Fields that identify a person, deleted from a record whose time is up (besides SEALED).
PERSONAL = ("device", "contact_index")


def trim_events(client, *, days: float, now: float) -> int:
    """Delete raw events older than *days*; return how many."""
    cutoff_ms = int((now - days * 86400) * 1000)
    return int(client.xtrim(EVENTS, minid=f"{cutoff_ms}-0", approximate=False))


def forget(client, province: str, tracking: str, *, now: float) -> None:
    """Erase one complaint's personal data: sealed parts, pseudonym, contact index entry."""
    key = store.record_key(province, tracking)
    index = client.hget(key, "contact_index")
    delivery_retention.erase(client, province, tracking, now=now)
    with client.pipeline(transaction=True) as pipe:
        pipe.hdel(key, *PERSONAL)
        if index:
            pipe.srem(store.contact_key(province, index.decode()), tracking)
        pipe.execute()


def expire_held(client, province: str, *, days: float, now: float, on_erase=None) -> int:
    """Erase personal data of complaints held longer than *days* without release; return how many."""
    due = [t.decode() for t in client.zrangebyscore(store.held_key(province), "-inf", now - days * 86400)]
    for tracking in due:
        if on_erase:
            on_erase(tracking)
        forget(client, province, tracking, now=now)
        with client.pipeline(transaction=True) as pipe:
            pipe.zrem(store.held_key(province), tracking)
            pipe.hset(store.record_key(province, tracking), "status", "expired")
            pipe.execute()
    return len(due)


def run(client, province: str, config, *, now: float | None = None, on_erase=None) -> dict:
    """Apply every retention period once; return the counts removed."""
    now = time.time() if now is None else now
    delivered: list[str] = []

    def erase_delivered(tracking: str) -> None:
        delivered.append(tracking)
        if on_erase:
            on_erase(tracking)

    erased = delivery_retention.purge_expired(client, province, retention_days=float(config["RETENTION_DAYS"]),
                                              now=now, on_erase=erase_delivered)
    for tracking in delivered:  # the sealed parts are gone; drop the pseudonym and index entry too
        forget(client, province, tracking, now=now)
    return {
        "events_removed": trim_events(client, days=float(config["EVENT_RETENTION_DAYS"]), now=now),
        "delivered_complaints_erased": erased,
        "held_complaints_erased": expire_held(client, province, days=float(config["HELD_RETENTION_DAYS"]),
                                              now=now, on_erase=on_erase),
    }
