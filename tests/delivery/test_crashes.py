"""Worker crashes, graceful stops, Redis outages: nothing is lost and nothing doubles."""
from __future__ import annotations

import random
import signal

from portal.complaints import store
from portal.delivery import state

from .conftest import drain, make_forwarder, submit, wait_for, worker_process


def test_sigkilled_worker_messages_are_reclaimed(app, resident, receiver, redis, tmp_path):
    receiver.hang = 30  # the dead worker's request never comes back
    receiver.behave = lambda key, n: "hang" if n == 1 else "ok"
    numbers = submit(resident, count=3)
    child = worker_process(app, tmp_path, "doomed")
    try:
        wait_for(lambda: sum(receiver.posts.values()) >= 1)  # mid-delivery
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    pending = redis.xpending(store.stream_key("51"), state.GROUP)
    assert pending["pending"] >= 1 and pending["consumers"][0]["name"] == b"doomed"
    drain(app, make_forwarder(app, "rescuer"))  # claim_idle is 1 s in tests
    assert set(receiver.stored) == set(numbers)
    assert all(n == 1 for n in receiver.stored_count.values())
    assert redis.xpending(store.stream_key("51"), state.GROUP)["pending"] == 0


def test_sigterm_finishes_the_current_complaint_then_exits(app, resident, receiver, redis, tmp_path):
    receiver.hang = 1.0
    receiver.behave = lambda key, n: "slow_accept"
    app.config["DELIVERY_CONFIG"]["channels"][0]["timeout"] = 5
    [tracking] = submit(resident)
    child = worker_process(app, tmp_path, "graceful")
    try:
        wait_for(lambda: receiver.posts[tracking] >= 1)
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=20) == 0
    finally:
        if child.poll() is None:
            child.kill()
    assert store.read(redis, "51", tracking)["status"] == "forwarded"
    assert redis.xlen(store.stream_key("51")) == 0 and receiver.posts[tracking] == 1


def test_spooled_complaints_move_to_redis_and_get_delivered(app, resident, receiver, redis, redis_server):
    redis_server.stop()
    try:
        resident.arrive()  # a session carried in its token while Redis is down
        spooled = submit(resident, count=2)
    finally:
        redis_server.start()
    assert redis.exists(store.record_key("51", spooled[0])) == 0
    drain(app)  # the worker replays the spool on its own
    assert set(receiver.stored) == set(spooled)
    assert store.read(redis, "51", spooled[1])["status"] == "forwarded"


def test_redis_restart_mid_delivery_loses_nothing(app, resident, receiver, redis, redis_server, tmp_path):
    receiver.hang = 0.5
    receiver.behave = lambda key, n: "slow_accept"
    app.config["DELIVERY_CONFIG"]["channels"][0]["timeout"] = 5
    numbers = submit(resident, count=4)
    child = worker_process(app, tmp_path, "survivor")
    try:
        wait_for(lambda: len(receiver.stored) >= 1)
        redis_server.stop(kill=True)
        redis_server.start()
        wait_for(lambda: len(receiver.stored) == 4, timeout=40)
        wait_for(lambda: all(store.read(redis, "51", n)["status"] == "forwarded" for n in numbers), timeout=40)
    finally:
        child.terminate()
        child.wait(timeout=20)
    assert all(n == 1 for n in receiver.stored_count.values())


def test_thirty_complaints_through_chaos(app, resident, receiver, redis, tmp_path):
    rng = random.Random(30)
    modes = ["ok"] * 10 + ["fail500", "drop", "accept_drop", "slow_accept", "hang"]
    receiver.hang = 0.7
    receiver.behave = lambda key, n: rng.choice(modes)
    app.config["DELIVERY_CONFIG"]["retry"] = {"max": 40, "base": 0.05, "cap": 0.3}
    numbers = submit(resident, count=30)
    child = worker_process(app, tmp_path, "chaos-1")
    try:
        wait_for(lambda: len(receiver.stored) >= 8, timeout=60)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    drain(app, make_forwarder(app, "chaos-2"), timeout=120)
    arrived = set(receiver.stored)
    twice = [k for k, n in receiver.stored_count.items() if n > 1]
    assert (len(arrived & set(numbers)), len(twice), len(set(numbers) - arrived)) == (30, 0, 0)
    assert redis.xlen(state.keys("51")["dead"]) == 0
