"""Issue 14: the worker's copies of Redis values (portal/tracked_cache.py) never outlive a change.

Against a real Redis (a single server of each test's own, in every CI pass): every change made by another client is seen by the very next lookup (no
waiting), a value read while it changed is not kept, and a listener that broke or went quiet
leaves nothing served from memory.
"""
from __future__ import annotations

import threading
import time

import pytest

from portal.counter_leases import CounterLeases, lease_size
from portal.tracked_cache import MISSING, TrackedCache
from tests.conftest import client_for_url

PREFIX = "portal:sess:"


@pytest.fixture
def redis(own_redis):
    """A single Redis of this test's own: the lane (and so its cache) never runs on a Cluster."""
    client = client_for_url(own_redis.url)
    yield client
    client.close()


@pytest.fixture
def cache(redis):
    pool = redis.connection_pool
    made = TrackedCache(lambda: pool.connection_class(**dict(pool.connection_kwargs, protocol=3)), [PREFIX],
                        heartbeat=0.2)
    yield made
    made.stop()


def _read(cache, redis, key):
    """A lookup as the lane makes it: the copy, else Redis (kept if nothing changed meanwhile)."""
    found = cache.get(key)
    if found is not MISSING:
        return found, "copy"
    mark = cache.mark()
    value, left = redis.get(key), redis.pttl(key)
    cache.put(key, value, mark, left)
    return value, "redis"


def test_a_change_by_another_client_is_seen_by_the_very_next_lookup(cache, redis):
    key = PREFIX + "a"
    redis.set(key, "one", ex=60)
    assert _read(cache, redis, key) == (b"one", "redis")
    assert _read(cache, redis, key) == (b"one", "copy")
    for n in range(50):  # no sleep: the invalidation is on the socket before SET returns
        redis.set(key, f"v{n}", ex=60)
        assert _read(cache, redis, key) == (f"v{n}".encode(), "redis")
        assert _read(cache, redis, key) == (f"v{n}".encode(), "copy")
    redis.delete(key)
    assert _read(cache, redis, key) == (None, "redis")


def test_threads_reading_at_once_never_see_a_value_older_than_the_last_acknowledged_write(cache, redis, own_redis):
    key = PREFIX + "threads"
    redis.set(key, 0)
    acknowledged, stale, errors = [0], [], []
    stop = threading.Event()

    def reader():
        own = client_for_url(own_redis.url)
        try:
            while not stop.is_set():
                floor = acknowledged[0]  # a write that had returned before this lookup began
                value, _ = _read(cache, own, key)
                if int(value) < floor:
                    stale.append((int(value), floor))
        except Exception as error:  # noqa: BLE001 - any failure in a thread is the test's failure
            errors.append(repr(error))

    threads = [threading.Thread(target=reader) for _ in range(6)]
    for thread in threads:
        thread.start()
    for n in range(1, 300):
        redis.set(key, n)
        acknowledged[0] = n
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == [] and stale == []
    assert _read(cache, redis, key)[0] == b"299"


def test_a_value_that_changed_while_it_was_read_is_not_kept(cache, redis):
    key = PREFIX + "b"
    redis.set(key, "old")
    mark = cache.mark()
    stale = redis.get(key)
    redis.set(key, "new")  # changed between the read and the keeping
    cache.put(key, stale, mark)
    assert cache.get(key) is MISSING
    assert _read(cache, redis, key) == (b"new", "redis")


def test_a_flush_drops_every_copy(cache, redis):
    for name in "cde":
        redis.set(PREFIX + name, name)
        _read(cache, redis, PREFIX + name)
    assert cache.get(PREFIX + "c") == b"c"
    redis.flushall()
    assert all(cache.get(PREFIX + name) is MISSING for name in "cde")


def test_a_copy_lives_no_longer_than_its_key_nor_max_age(cache, redis):
    cache.max_age = 0.6
    redis.set(PREFIX + "short", "x", px=250)
    redis.set(PREFIX + "long", "y")
    _read(cache, redis, PREFIX + "short")
    _read(cache, redis, PREFIX + "long")
    assert cache.get(PREFIX + "short") == b"x" and cache.get(PREFIX + "long") == b"y"
    time.sleep(0.3)
    assert cache.get(PREFIX + "short") is MISSING  # its key's own lifetime
    assert cache.get(PREFIX + "long") == b"y"
    time.sleep(0.4)
    assert cache.get(PREFIX + "long") is MISSING  # max_age


def test_keys_outside_the_tracked_prefixes_are_never_kept(cache, redis):
    redis.set("portal:other", "z")
    assert _read(cache, redis, "portal:other") == (b"z", "redis")
    assert _read(cache, redis, "portal:other") == (b"z", "redis")


def test_a_broken_listener_drops_everything_and_a_new_one_takes_over(cache, redis):
    key = PREFIX + "f"
    redis.set(key, "1")
    _read(cache, redis, key)
    assert cache.get(key) == b"1"
    tracking = [c["id"] for c in redis.client_list() if "t" in c["flags"]]  # listeners (other tests' too)
    assert tracking
    for client_id in tracking:
        redis.client_kill_filter(_id=client_id)
    time.sleep(0.05)  # the kill's FIN reaches the socket
    assert cache.get(key) is MISSING
    redis.set(key, "2")
    assert _read(cache, redis, key) == (b"2", "redis")  # a new listener (tracking again) ...
    assert _read(cache, redis, key) == (b"2", "copy")
    redis.set(key, "3")
    assert _read(cache, redis, key) == (b"3", "redis")  # ... that reports changes too


def test_a_listener_that_stops_answering_is_given_up(cache, redis):
    key = PREFIX + "g"
    redis.set(key, "1")
    _read(cache, redis, key)
    assert cache.get(key) == b"1"
    redis.execute_command("CLIENT", "PAUSE", "1500")  # the server answers no one: no PONG comes back
    time.sleep(0.7)  # more than two heartbeats of 0.2 s
    assert cache.get(key) is MISSING
    time.sleep(1.0)


def test_a_reset_drops_everything(cache, redis):
    redis.set(PREFIX + "h", "1")
    _read(cache, redis, PREFIX + "h")
    cache.reset()
    assert cache.listener is None and cache.get(PREFIX + "h") is MISSING


# --- leases -------------------------------------------------------------------------------------

def _take(leases, redis, key, limit, window=60):
    """One hit as the lane counts it: from the lease, else a new reservation."""
    count = leases.spend(key)
    if count is None:
        reply = redis.eval(_lease_script(), 1, key, window, lease_size(limit))
        count = leases.granted(key, limit, reply)
    return count


def _lease_script():
    from portal.counter_leases import LEASE

    return LEASE


def test_lease_sizes_count_small_limits_one_by_one():
    assert [lease_size(n) for n in (1, 3, 60, 127, 128, 300, 600, 10**9)] == [1, 1, 1, 1, 2, 4, 9, 64]


def test_leased_hits_never_let_more_than_the_limit_through_across_workers(redis):
    key = "portal:{p51}:rl:client:lease-test"
    workers = [CounterLeases() for _ in range(3)]
    limit = 640  # leases of 10
    counts = [_take(workers[n % 3], redis, key, limit) for n in range(900)]
    allowed = [count for count in counts if count <= limit]
    assert len(allowed) <= limit and len(allowed) >= limit - 3 * (lease_size(limit) - 1)
    assert len(set(allowed)) == len(allowed)  # no count handed out twice
    assert int(redis.get(key)) >= len(allowed)  # Redis never holds less than what went through


def test_a_lease_ends_with_its_window(redis):
    key = "portal:{p51}:rl:client:lease-window"
    redis.set(key, 0, px=300)  # a window about to close
    leases = CounterLeases()
    assert _take(leases, redis, key, 6400) == 1
    assert leases.spend(key) == 2
    time.sleep(0.35)
    assert leases.spend(key) is None  # the window (and Redis's count) is gone: reserve anew
    assert _take(leases, redis, key, 6400) == 1
