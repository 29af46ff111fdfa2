"""Redis keys of delivery, all on the province's hash tag, and the scripts that change them.

- ``portal:{p51}:complaints``                  stream (store.py), group ``deliver``
- ``portal:{p51}:complaints:dead``             dead letters: tracking, channel, reason, attempts
- ``portal:{p51}:complaints:retry``            zset tracking -> when to try again
- ``portal:{p51}:complaints:undelivered``      zset tracking -> first seen (oldest-age metric)
- ``portal:{p51}:complaints:retention``        zset tracking -> delivered at (erasure clock)
- ``portal:{p51}:delivery:<tracking>``         hash: attempts, ``ch:<name>`` = delivered at, last error
- ``portal:{p51}:delivery:lock:<tracking>``    one worker at a time per complaint
- ``portal:{p51}:workers``                     hash consumer name -> unix time of its last loop turn
"""
from __future__ import annotations

import json
import time

import redis

from ..complaints import store

GROUP = "deliver"
DEAD = "portal:{{p{prov}}}:complaints:dead"
RETRY = "portal:{{p{prov}}}:complaints:retry"
UNDELIVERED = "portal:{{p{prov}}}:complaints:undelivered"
RETENTION = "portal:{{p{prov}}}:complaints:retention"
STATE = "portal:{{p{prov}}}:delivery:{tn}"
LOCK = "portal:{{p{prov}}}:delivery:lock:{tn}"
WORKERS = "portal:{{p{prov}}}:workers"
STEPS = ("received", "forwarded", "answered")

# Move a complaint forward only (received < forwarded < answered), appending to its
# history; extra fields (LAPOR! id and link) are written either way. An "answered"
# callback that beats the worker's "forwarded" must not be undone by it.
_ADVANCE = """
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return -1 end
local rank = {received = 1, forwarded = 2, answered = 3}
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if (rank[current] or 0) >= rank[ARGV[1]] then return 0 end
local history = cjson.decode(redis.call('HGET', KEYS[1], 'history') or '[]')
table.insert(history, {ARGV[1], tonumber(ARGV[2])})
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'history', cjson.encode(history))
return 1
"""

# Due retries go back into the stream, atomically, so none is lost or doubled between the two.
_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, tracking in ipairs(due) do
  redis.call('ZREM', KEYS[1], tracking)
  redis.call('XADD', KEYS[2], '*', 'tracking', tracking)
end
return #due
"""

# Entries a worker still has in hand: extend each lock it still owns and reset the entry's idle
# time (XCLAIM ... JUSTID does not count a delivery), so XAUTOCLAIM leaves live work alone.
# KEYS: stream, lock...; ARGV: group, consumer, px, then (owner, entry id) per lock.
_KEEP = """
local kept = 0
for i = 2, #KEYS do
  local owner, id = ARGV[2 * i], ARGV[2 * i + 1]
  if redis.call('GET', KEYS[i]) == owner then
    redis.call('PEXPIRE', KEYS[i], ARGV[3])
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'JUSTID')
    kept = kept + 1
  end
end
return kept
"""

_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def keys(province: str, tracking: str = "") -> dict[str, str]:
    """All delivery keys of *province* (and of one complaint when *tracking* is given)."""
    return {
        "stream": store.stream_key(province),
        "dead": DEAD.format(prov=province),
        "retry": RETRY.format(prov=province),
        "undelivered": UNDELIVERED.format(prov=province),
        "retention": RETENTION.format(prov=province),
        "record": store.record_key(province, tracking),
        "state": STATE.format(prov=province, tn=tracking),
        "lock": LOCK.format(prov=province, tn=tracking),
        "workers": WORKERS.format(prov=province),
    }


def advance(client: redis.Redis, province: str, tracking: str, status: str, **extra: str) -> int:
    """Move a complaint to *status* if that is forward; 1 moved, 0 already there or past, -1 unknown."""
    if status not in STEPS:
        raise ValueError(f"unknown status {status!r}")
    args = [status, f"{time.time():.3f}"]
    for name, value in extra.items():
        args += [name, value]
    return int(client.eval(_ADVANCE, 1, store.record_key(province, tracking), *args))


def move_due(client: redis.Redis, province: str, *, now: float | None = None, limit: int = 100) -> int:
    """Put retries whose time has come back into the stream; return how many."""
    k = keys(province)
    return int(client.eval(_DUE, 2, k["retry"], k["stream"], time.time() if now is None else now, limit))


def unlock(client: redis.Redis, key: str, owner: str) -> None:
    """Release a complaint lock if *owner* still holds it."""
    client.eval(_UNLOCK, 1, key, owner)


def keep(client: redis.Redis, province: str, consumer: str, held: list[tuple[str, str, str]], *,
         ttl: float) -> int:
    """Extend the locks of entries in hand, as (tracking, owner, entry id); return how many are still ours."""
    kept = 0
    for start in range(0, len(held), 100):
        batch = held[start:start + 100]
        lock_keys = [LOCK.format(prov=province, tn=tracking) for tracking, _, _ in batch]
        args = [GROUP, consumer, int(ttl * 1000)]
        for _, owner, entry_id in batch:
            args += [owner, entry_id]
        kept += int(client.eval(_KEEP, 1 + len(batch), store.stream_key(province), *lock_keys, *args))
    return kept


def heartbeat(client: redis.Redis, province: str, consumer: str, *, now: float | None = None) -> None:
    """Record that *consumer* is alive (``/readyz`` reads it)."""
    client.hset(WORKERS.format(prov=province), consumer, int(time.time() if now is None else now))


def delivered_channels(client: redis.Redis, province: str, tracking: str) -> dict[str, str]:
    """Channel name -> delivered-at for the channels that took this complaint."""
    raw = client.hgetall(keys(province, tracking)["state"])
    return {k.decode()[3:]: v.decode() for k, v in raw.items() if k.startswith(b"ch:")}


def read_state(client: redis.Redis, province: str, tracking: str) -> dict[str, str]:
    """The delivery state hash of one complaint, decoded."""
    raw = client.hgetall(keys(province, tracking)["state"])
    return {k.decode(): v.decode() for k, v in raw.items()}


def dead_entry(tracking: str, *, channel: str, reason: str, attempts: int, code: int | None) -> dict:
    """Fields of a dead letter (ids, counts and codes only: no complaint text)."""
    return {"tracking": tracking, "channel": channel, "reason": reason, "attempts": str(attempts),
            "code": "" if code is None else str(code), "at": f"{time.time():.0f}"}


def history(record: dict) -> list:
    """The status history of a record."""
    return json.loads(record.get("history") or "[]")
