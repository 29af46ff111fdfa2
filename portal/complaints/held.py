"""The review queue: complaints kept back by an abuse check until a person releases or rejects them.

A complaint caught by the honeypot, the minimum fill time or a quota is
stored like any other (same record, same encryption, same AOF durability,
the spool when Redis is down), but its tracking number goes into
``portal:{p<prov>}:complaints:held`` instead of the delivery stream. Nothing
is dropped while the resident holds a receipt: an operator (``flask held``,
later the studio) either releases it onto the stream as a normal complaint
or rejects it with a reason. Both moves are one Lua script each, guarded by
removing the number from the queue, so a complaint is released at most once
and never both released and rejected.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from ..delivery import state
from . import store

REJECT_REASON_MAX = 200

# KEYS: held set, record, stream. ARGV: tracking, now.
_RELEASE = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[2], 'status') ~= 'held' then return 0 end
local history = cjson.decode(redis.call('HGET', KEYS[2], 'history') or '[]')
table.insert(history, {'received', tonumber(ARGV[2])})
redis.call('HSET', KEYS[2], 'status', 'received', 'history', cjson.encode(history), 'released_at', ARGV[2])
redis.call('XADD', KEYS[3], '*', 'tracking', ARGV[1])
return 1
"""

# KEYS: held set, record, retention index. ARGV: tracking, now, reason.
# A rejected complaint's personal data is erased after the retention period like a delivered one.
_REJECT = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[2], 'status') ~= 'held' then return 0 end
local history = cjson.decode(redis.call('HGET', KEYS[2], 'history') or '[]')
table.insert(history, {'rejected', tonumber(ARGV[2])})
redis.call('HSET', KEYS[2], 'status', 'rejected', 'history', cjson.encode(history),
           'rejected_at', ARGV[2], 'rejected_reason', ARGV[3])
redis.call('ZADD', KEYS[3], 'NX', ARGV[2], ARGV[1])
return 1
"""


@dataclass
class HeldComplaint:
    """One entry of the review queue, without personal data."""

    tracking: str
    held_at: float
    reason: str
    site_id: str
    kind: str
    category: str


def list_held(client: redis.Redis, province: str, *, limit: int = 100) -> list[HeldComplaint]:
    """Return the oldest *limit* held complaints, oldest first."""
    entries = client.zrange(store.held_key(province), 0, limit - 1, withscores=True)
    held = []
    for member, score in entries:
        tracking = member.decode()
        record = store.read(client, province, tracking) or {}
        held.append(HeldComplaint(tracking=tracking, held_at=score, reason=record.get("held_reason", ""),
                                  site_id=record.get("site_id", ""), kind=record.get("kind", ""),
                                  category=record.get("category", "")))
    return held


def count_held(client: redis.Redis, province: str) -> int:
    """Return how many complaints wait for review."""
    return int(client.zcard(store.held_key(province)))


def release(client: redis.Redis, province: str, tracking: str, *, now: float | None = None) -> bool:
    """Put a held complaint on the delivery stream as a normal complaint; False if it was not held."""
    now = time.time() if now is None else now
    moved = client.eval(_RELEASE, 3, store.held_key(province), store.record_key(province, tracking),
                        store.stream_key(province), tracking, f"{now:.3f}")
    return bool(moved)


def reject(client: redis.Redis, province: str, tracking: str, reason: str, *, now: float | None = None) -> bool:
    """Mark a held complaint rejected with *reason* (never forwarded); False if it was not held."""
    reason = " ".join(reason.split())[:REJECT_REASON_MAX]
    if not reason:
        raise ValueError("a reason is required")
    now = time.time() if now is None else now
    moved = client.eval(_REJECT, 3, store.held_key(province), store.record_key(province, tracking),
                        state.keys(province)["retention"], tracking, f"{now:.3f}", reason)
    return bool(moved)
