"""Rate-limit hits counted in batches: a worker reserves several hits of a window at once.

The per-client, per-site and status-lookup limits (``portal/limits.py``) count every request in
Redis. On the fast lane's pages that count was the one thing left that needed Redis on every
request (issue 14). Here a worker takes a *lease*: one ``INCRBY size`` reserves ``size`` hits
of the window in Redis, and the worker spends them locally, one per request, until they are
gone or the window ends. Redis's counter is always the reserved total, so it is never below
what was let through: a limit is never exceeded, whatever the number of workers and servers.
What a lease costs is the other way round: hits a worker reserved and did not spend when the
window closes are lost with it, so a client may be refused up to ``workers × (size − 1)`` hits
early in a window. The lease size keeps that small: ``limit // 64`` hits, at most 64 and at
least 1, so a limit under 128 (the status lookups' 60, a test's 3) is counted one by one, exactly
as before, and the default 600 requests a minute lose at most 8 per worker.

A lease runs out with its window: the script returns the key's remaining lifetime, and the
worker stops spending at that moment, when the key (and its count) are gone from Redis too.
"""
from __future__ import annotations

import hashlib
import threading
import time

MAX_SIZE = 64
SIZE_DIVISOR = 64
HELD = 8192  # keys with a live lease kept per worker; the oldest goes first beyond that

# Reserve ARGV[2] hits of the counter's window (opened with its first reservation, ARGV[1] seconds).
# Returns {total reserved, the window's milliseconds left}.
_RESERVE = """
local n = redis.call('INCRBY', KEYS[{k}], ARGV[2])
local left = redis.call('PTTL', KEYS[{k}])
if left < 0 then
  left = tonumber(ARGV[1]) * 1000
  redis.call('PEXPIRE', KEYS[{k}], left)
end
return {{n, left}}
"""
LEASE = _RESERVE.format(k=1)
# The same, only if the key KEYS[1] exists (nil otherwise): the form counts against its site only
# for a live session, as the app does once it has read it (portal/fast_lane.py). Keys of two
# slots: a single Redis only, as the lane is.
LEASE_IF = "if redis.call('EXISTS', KEYS[1]) == 0 then return false end\n" + _RESERVE.format(k=2)
LEASE_SHA = hashlib.sha1(LEASE.encode()).hexdigest()
LEASE_IF_SHA = hashlib.sha1(LEASE_IF.encode()).hexdigest()
SCRIPTS = (LEASE, LEASE_IF)


def lease_size(limit: int) -> int:
    """How many hits one reservation takes under *limit* (1: counted one by one)."""
    return max(1, min(MAX_SIZE, int(limit) // SIZE_DIVISOR))


class CounterLeases:
    """The hits this worker has reserved and not yet spent, per counter key."""

    def __init__(self):
        self.lock = threading.Lock()
        # key -> ranges of reserved counts [next, last, window ends (monotonic)]: two threads of a
        # worker may reserve at once, and neither range may be lost.
        self.held: dict[str, list[list]] = {}

    def spend(self, key: str) -> int | None:
        """This request's count from a live lease of *key*, or None if a reservation is needed."""
        with self.lock:
            ranges = self.held.get(key)
            if ranges is None:
                return None
            now = time.monotonic()
            while ranges:
                lease = ranges[0]
                if lease[0] <= lease[1] and now < lease[2]:
                    lease[0] += 1
                    return lease[0] - 1
                ranges.pop(0)
            del self.held[key]
            return None

    @staticmethod
    def command(key: str, limit: int, window: int, guard: str | None = None) -> tuple:
        """The EVALSHA that reserves a lease of *key* (if *guard* exists, when given); reply to :meth:`granted`."""
        if guard is None:
            return ("EVALSHA", LEASE_SHA, 1, key, window, lease_size(limit))
        return ("EVALSHA", LEASE_IF_SHA, 2, guard, key, window, lease_size(limit))

    def granted(self, key: str, limit: int, reply) -> int | None:
        """This request's count from a reservation's *reply*; the rest of the lease is kept."""
        try:
            total, left_ms = int(reply[0]), int(reply[1])
        except (TypeError, ValueError, IndexError):
            return None
        size = lease_size(limit)
        count = total - size + 1  # the first hit of this reservation is this request's
        last = min(total, int(limit))  # hits past the limit are reserved but never spent
        if count < last and left_ms > 0:
            with self.lock:
                if key not in self.held and len(self.held) >= HELD:
                    self.held.pop(next(iter(self.held)))
                self.held.setdefault(key, []).append([count + 1, last, time.monotonic() + left_ms / 1000])
        return count
