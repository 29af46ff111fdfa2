"""Each channel has its own bounded sends in flight: a hanging receiver holds up nobody else."""
from __future__ import annotations

import signal
import threading
import time

import pytest

from portal.complaints import store
from portal.delivery import state

from .conftest import drain, make_forwarder, submit, turns_until, wait_for, worker_process
from .standins import Receiver


@pytest.fixture
def case_system():
    """A second receiver (the province's case system, a webhook); tests script it."""
    server = Receiver().start()
    yield server
    server.gate.set()  # release anything still held
    server.stop()


def add_webhook(delivery, server, **extra) -> None:
    delivery["channels"].append({"name": "kasus", "type": "webhook", "url": server.url,
                                 "secret_env": "TEST_WEBHOOK_SECRET", **extra})


class Background:
    """A worker loop in a thread of the test, stopped the way SIGTERM stops it."""

    def __init__(self, app, forwarder):
        self.app, self.forwarder, self.error = app, forwarder, None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            with self.app.app_context():
                self.forwarder.run()
        except BaseException as error:  # surfaced by stop()
            self.error = error

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.forwarder.stop()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive()
        if self.error and not exc[0]:
            raise self.error


def test_a_held_channel_delays_neither_the_other_channel_nor_the_next_complaints(
        app, resident, receiver, case_system, redis, delivery):
    # kasus takes requests and holds them (its client timeout is long): only 2 may be in flight.
    case_system.behave = lambda key, n: "gated"
    add_webhook(delivery, case_system, timeout=60, concurrency=2)
    delivery["claim_idle"] = 3.0
    numbers = submit(resident, count=8)
    worker = make_forwarder(app)
    with Background(app, worker):
        # Every complaint reaches LAPOR! while kasus still holds its first two.
        wait_for(lambda: set(receiver.stored) == set(numbers))
        assert sum(case_system.posts.values()) == 2 and case_system.in_flight == 2
        assert case_system.stored == {}
        # Held longer than claim_idle, the entries in hand are kept: a second worker reclaims none.
        time.sleep(4.0)
        rival = make_forwarder(app, "rival")
        with app.app_context():
            assert rival.reclaim() == []
        assert case_system.max_in_flight == 2
        case_system.gate.set()
        wait_for(lambda: set(case_system.stored) == set(numbers), timeout=60)
        wait_for(lambda: all(store.read(redis, "51", n)["status"] == "forwarded" for n in numbers), timeout=30)
    assert case_system.max_in_flight == 2  # bounded for the whole run
    assert all(count == 1 for count in receiver.posts.values())  # LAPOR! was never resent to
    assert all(count == 1 for count in case_system.stored_count.values())
    # Waiting for room (deferred, back every ~50 ms for seconds) costs no attempt: with retry max 4
    # they would all be dead letters otherwise. One attempt for LAPOR!, at most one more for kasus.
    assert redis.xlen(state.keys("51")["dead"]) == 0
    assert all(int(state.read_state(redis, "51", n)["attempts"]) <= 2 for n in numbers)


def test_a_receiver_hanging_past_the_client_timeout_holds_up_nobody(
        app, resident, receiver, case_system, redis, delivery):
    # Each kasus request sleeps 30 s; the client gives up after 2 s and retries later.
    case_system.hang = 30
    case_system.behave = lambda key, n: "hang"
    add_webhook(delivery, case_system, timeout=2, concurrency=2)
    delivery["retry"] = {"max": 100, "base": 0.05, "cap": 0.2}
    numbers = submit(resident, count=8)
    worker = make_forwarder(app)
    with Background(app, worker):
        wait_for(lambda: set(receiver.stored) == set(numbers))
        # One after another, LAPOR!'s 8th would have waited for 7 kasus timeouts; here kasus has
        # seen at most its 2 sends in flight and the 2 queued behind them.
        assert sum(case_system.posts.values()) <= 4
        case_system.behave = lambda key, n: "ok"
        case_system.gate.set()  # the hanging requests end (without storing)
        wait_for(lambda: set(case_system.stored) == set(numbers), timeout=60)
    assert all(count == 1 for count in receiver.posts.values())
    assert all(count == 1 for count in case_system.stored_count.values())
    for number in numbers:
        info = state.read_state(redis, "51", number)
        assert {"ch:lapor", "ch:kasus"} <= set(info)


def test_sends_in_flight_are_bounded_per_channel(app, resident, receiver, delivery):
    receiver.hang = 0.5
    receiver.behave = lambda key, n: "slow_accept"
    delivery["channels"][0].update(timeout=10, concurrency=3)
    numbers = submit(resident, count=12)
    drain(app, timeout=60)
    assert set(receiver.stored) == set(numbers)
    assert receiver.max_in_flight == 3  # in parallel, and never more than its concurrency
    assert all(count == 1 for count in receiver.posts.values())


def test_the_worker_writes_its_heartbeat_every_turn(app, redis):
    worker = make_forwarder(app, "host-7")
    turns_until(app, worker, lambda: redis.hget("portal:{p51}:workers", "host-7") is not None)
    beat = int(redis.hget("portal:{p51}:workers", "host-7"))
    assert abs(beat - time.time()) < 60


def test_sigterm_finishes_the_sends_in_flight_and_leaves_the_rest_pending(app, resident, receiver, redis, tmp_path):
    receiver.hang = 1.5
    receiver.behave = lambda key, n: "slow_accept"
    app.config["DELIVERY_CONFIG"]["channels"][0].update(timeout=10, concurrency=2)
    numbers = submit(resident, count=6)
    child = worker_process(app, tmp_path, "graceful")
    try:
        wait_for(lambda: receiver.in_flight == 2)
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=30) == 0
    finally:
        if child.poll() is None:
            child.kill()
    sent = [n for n in numbers if receiver.posts[n]]
    assert len(sent) == 2  # the two under way, nothing begun after the signal
    for number in sent:  # finished and settled, not cut off
        assert store.read(redis, "51", number)["status"] == "forwarded"
    # The rest wait (pending or scheduled) and go out once, with no resend of the first two.
    drain(app, make_forwarder(app, "next"), timeout=60)
    assert set(receiver.stored) == set(numbers)
    assert all(count == 1 for count in receiver.posts.values())
