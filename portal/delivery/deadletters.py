"""The dead-letter stream: list, inspect, retry and purge (RQ's ``FailedJobRegistry``)."""
from __future__ import annotations

import time

import redis

from . import state


def _decode(fields: dict) -> dict:
    return {k.decode(): v.decode() for k, v in fields.items()}


def entries(client: redis.Redis, province: str, *, count: int = 100) -> list[tuple[str, dict]]:
    """The oldest *count* dead letters as (entry id, fields)."""
    return [(i.decode(), _decode(f)) for i, f in client.xrange(state.keys(province)["dead"], count=count)]


def get(client: redis.Redis, province: str, entry_id: str) -> dict | None:
    """One dead letter's fields, or None."""
    found = client.xrange(state.keys(province)["dead"], min=entry_id, max=entry_id)
    return _decode(found[0][1]) if found else None


def _letter(client: redis.Redis, province: str, entry_id: str) -> tuple[str, dict] | None:
    """The tracking number and delivery keys of a dead letter, or None."""
    fields = get(client, province, entry_id)
    if fields is None:
        return None
    return fields["tracking"], state.keys(province, fields["tracking"])


def retry(client: redis.Redis, province: str, entry_id: str) -> str | None:
    """Queue a dead letter again with fresh attempts; return its tracking number, or None.

    Channels that already took the complaint are not sent to again.
    """
    found = _letter(client, province, entry_id)
    if found is None:
        return None
    tracking, keys = found
    with client.pipeline(transaction=True) as pipe:
        pipe.hset(keys["state"], "attempts", 0)
        pipe.xadd(keys["stream"], {"tracking": tracking})
        pipe.xdel(keys["dead"], entry_id)
        pipe.execute()
    return tracking


def purge(client: redis.Redis, province: str, entry_id: str, *, now: float | None = None) -> str | None:
    """Give up on a dead letter; its personal data is then erased after the retention period."""
    found = _letter(client, province, entry_id)
    if found is None:
        return None
    tracking, keys = found
    with client.pipeline(transaction=True) as pipe:
        pipe.xdel(keys["dead"], entry_id)
        pipe.zadd(keys["retention"], {tracking: time.time() if now is None else now}, nx=True)
        pipe.execute()
    return tracking
