"""The review queue: held complaints survive Redis restarts, and release or reject each exactly once."""
from __future__ import annotations

import json

import pytest
import redis as redis_py

from portal.complaints import held, store
from portal.complaints.service import replay_spool
from portal.delivery import state
from portal.tracking import display, normalize
from tests.conftest import app_on, Resident, stamp_from, tracking_number


@pytest.fixture
def own_app(own_redis, tmp_path):
    app = app_on(own_redis.url, tmp_path / "var", MIN_FILL_SECONDS=3, DEVICE_LIMIT=1)
    return app


def submit_caught(app) -> dict[str, str]:
    """One complaint for each reason that holds it; return reason → tracking number."""
    resident = Resident(app.test_client())
    resident.arrive()
    numbers = {}
    for reason, changes in (("honeypot", {"website": "https://autofill.example", "started": stamp_from(app, 9, "h")}),
                            ("too_fast", {}),
                            ("ok", {"started": stamp_from(app, 9, "ok")}),
                            ("device_quota", {"started": stamp_from(app, 9, "q")})):
        response = resident.submit(**changes)
        assert response.status_code == 200
        numbers[reason] = normalize(tracking_number(response.get_data(as_text=True)))
    return numbers


def test_caught_complaints_are_held_with_reason_and_survive_a_redis_crash(own_app, own_redis):
    numbers = submit_caught(own_app)
    own_redis.stop(kill=True)  # SIGKILL: only the AOF brings them back
    own_redis.start()
    client = redis_py.Redis.from_url(own_redis.url)
    with own_app.app_context():
        queue = {entry.tracking: entry.reason for entry in held.list_held(client, "51")}
    assert queue == {numbers["honeypot"]: "honeypot", numbers["too_fast"]: "too_fast",
                     numbers["device_quota"]: "device_quota"}
    assert client.xlen(store.stream_key("51")) == 1  # only the ordinary complaint is on the stream
    record = store.read(client, "51", numbers["honeypot"])
    assert record["status"] == "held" and record["held_reason"] == "honeypot"
    assert "autofill" not in str(record) and "Puskesmas" not in str(record)  # sealed like any complaint


def test_release_puts_a_held_complaint_on_the_stream_exactly_once(own_app, own_redis):
    numbers = submit_caught(own_app)
    client = redis_py.Redis.from_url(own_redis.url)
    tracking = numbers["honeypot"]
    assert held.release(client, "51", tracking)
    assert not held.release(client, "51", tracking)  # a second release (or a second operator) is a no-op
    assert not held.reject(client, "51", tracking, "spam")  # and it can no longer be rejected
    entries = [fields[b"tracking"].decode() for _, fields in client.xrange(store.stream_key("51"))]
    assert entries.count(tracking) == 1 and len(entries) == 2
    record = store.read(client, "51", tracking)
    assert record["status"] == "received"
    assert [step for step, _ in json.loads(record["history"])] == ["held", "received"]
    assert tracking not in {e.tracking for e in held.list_held(client, "51")}
    # The released complaint is a normal one for the delivery worker and the status page.
    page = own_app.test_client().get(f"/status/{display(tracking)}?lang=en").get_data(as_text=True)
    assert 'id="review-notice"' not in page


def test_reject_keeps_the_reason_and_schedules_erasure(own_app, own_redis):
    numbers = submit_caught(own_app)
    client = redis_py.Redis.from_url(own_redis.url)
    tracking = numbers["too_fast"]
    assert held.reject(client, "51", tracking, "  advertising,\n not a report ")
    assert not held.release(client, "51", tracking)
    record = store.read(client, "51", tracking)
    assert record["status"] == "rejected" and record["rejected_reason"] == "advertising, not a report"
    assert client.zscore(state.keys("51")["retention"], tracking) is not None
    assert client.xlen(store.stream_key("51")) == 1
    with pytest.raises(ValueError):
        held.reject(client, "51", numbers["honeypot"], "   ")


def test_held_cli_list_release_reject(own_app, own_redis):
    numbers = submit_caught(own_app)
    runner = own_app.test_cli_runner()
    listing = runner.invoke(args=["held", "list"])
    assert listing.exit_code == 0, listing.output
    assert display(numbers["honeypot"]) in listing.output and "honeypot" in listing.output
    assert "3 complaint(s) held" in listing.output
    assert "Puskesmas" not in listing.output  # the list carries no text
    shown = runner.invoke(args=["held", "show", display(numbers["too_fast"])])
    assert shown.exit_code == 0 and "Puskesmas tutup" in shown.output  # the reviewer reads the text

    released = runner.invoke(args=["held", "release", display(numbers["honeypot"]).lower()])
    assert released.exit_code == 0 and f"released {display(numbers['honeypot'])}" in released.output
    again = runner.invoke(args=["held", "release", display(numbers["honeypot"])])
    assert again.exit_code != 0 and "not held" in again.output
    rejected = runner.invoke(args=["held", "reject", display(numbers["too_fast"]), "--reason", "spam"])
    assert rejected.exit_code == 0 and "rejected" in rejected.output
    no_reason = runner.invoke(args=["held", "reject", display(numbers["device_quota"])])
    assert no_reason.exit_code != 0
    bad = runner.invoke(args=["held", "release", "NOT-A-NUMBER"])
    assert bad.exit_code != 0 and "not a tracking number" in bad.output

    client = redis_py.Redis.from_url(own_redis.url)
    assert client.xlen(store.stream_key("51")) == 2
    assert "1 complaint(s) held" in runner.invoke(args=["held", "list"]).output


def test_held_complaint_goes_to_the_spool_when_redis_is_down_and_stays_held(own_app, own_redis):
    resident = Resident(own_app.test_client())
    resident.arrive()
    fields = dict(resident.complaint(website="autofilled"), started=stamp_from(own_app, 9, "spooled"))  # with the page's session copy
    own_redis.stop()
    response = resident.client.post(f"/p/{resident.token}/lapor", data=fields)
    assert 'id="held-notice"' in response.get_data(as_text=True)
    tracking = normalize(tracking_number(response.get_data(as_text=True)))
    assert own_app.extensions["portal_spool"].pending()
    own_redis.start()
    with own_app.app_context():
        replay_spool()
        replay_spool()  # replaying twice neither duplicates it nor forwards it
    client = redis_py.Redis.from_url(own_redis.url)
    assert client.xlen(store.stream_key("51")) == 0
    assert client.zrange(store.held_key("51"), 0, -1) == [tracking.encode()]
    assert store.read(client, "51", tracking)["held_reason"] == "honeypot"
