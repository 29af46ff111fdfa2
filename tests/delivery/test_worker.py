"""The worker against a real Redis and a stand-in LAPOR! on 127.0.0.1."""
from __future__ import annotations

import json
import logging

from portal.complaints import store
from portal.delivery import state
from portal.tracking import display

from .conftest import drain, make_forwarder, submit, turns_until

BODY = "Puskesmas tutup jam 10 pagi padahal jadwalnya sampai jam 14."


def test_complaint_reaches_lapor_once_and_is_forwarded(app, resident, receiver, redis, caplog):
    caplog.set_level(logging.DEBUG)
    [tracking] = submit(resident, name="Made Wirawan", contact="081234567890")
    assert drain(app) == 1
    assert receiver.stored_count == {tracking: 1}
    headers = receiver.headers[tracking]
    assert headers["Idempotency-Key"] == tracking
    assert headers["Authorization"] == "Bearer lapor-token"
    body = receiver.stored[tracking]["body"]
    assert body["body"] == BODY and body["reporter"] == {"name": "Made Wirawan", "contact": "081234567890"}
    assert body["anonim"] is False and body["rahasia"] is False
    record = store.read(redis, "51", tracking)
    assert record["status"] == "forwarded"
    assert record["lapor_id"] == receiver.stored[tracking]["id"]
    assert record["lapor_url"].endswith("/laporan/" + record["lapor_id"])
    assert redis.xlen(store.stream_key("51")) == 0  # acknowledged and removed
    # Neither the text nor the reporter reaches the logs.
    assert "Puskesmas" not in caplog.text and "Made Wirawan" not in caplog.text and "0812" not in caplog.text
    assert tracking in caplog.text


def test_status_page_shows_forwarded_with_lapor_id_then_answered(app, resident, receiver, redis, client):
    [tracking] = submit(resident)
    page = client.get(f"/status/{display(tracking)}").get_data(as_text=True)
    assert "LAPOR! number" not in page
    drain(app)
    lapor_id = store.read(redis, "51", tracking)["lapor_id"]
    page = client.get(f"/status/{display(tracking)}?lang=en").get_data(as_text=True)
    assert lapor_id in page and f"https://www.lapor.go.id/laporan/{lapor_id}" in page
    state.advance(redis, "51", tracking, "answered")
    view = client.get(f"/status/{display(tracking)}?lang=en").get_data(as_text=True)
    assert view.count('class="done"') == 3
    assert "Made" not in view and BODY not in view


def test_server_errors_are_retried_with_backoff_then_delivered(app, resident, receiver, redis):
    receiver.script("fail500", "drop", "fail500")
    [tracking] = submit(resident)
    worker = make_forwarder(app)
    # After the first failure the complaint waits in the retry set, not in the stream.
    turns_until(app, worker, lambda: redis.zscore(state.keys("51")["retry"], tracking) is not None)
    assert redis.xlen(store.stream_key("51")) == 0
    assert state.read_state(redis, "51", tracking)["last_error"] == "lapor: HTTP 500"
    drain(app, worker)
    assert receiver.posts[tracking] == 4
    assert receiver.stored_count == {tracking: 1}
    assert store.read(redis, "51", tracking)["status"] == "forwarded"
    assert state.read_state(redis, "51", tracking)["attempts"] == "4"


def test_a_4xx_goes_to_the_dead_letters_at_once(app, resident, receiver, redis):
    receiver.script("reject400")
    [tracking] = submit(resident)
    drain(app)
    dead = redis.xrange(state.keys("51")["dead"])
    assert len(dead) == 1
    fields = {k.decode(): v.decode() for k, v in dead[0][1].items()}
    assert fields["tracking"] == tracking and fields["code"] == "400" and fields["attempts"] == "1"
    assert receiver.posts[tracking] == 1
    assert store.read(redis, "51", tracking)["status"] == "received"


def test_exhausted_retries_go_to_the_dead_letters(app, resident, receiver, redis, delivery):
    receiver.behave = lambda key, n: "fail500"
    [tracking] = submit(resident)
    drain(app)
    dead = redis.xrange(state.keys("51")["dead"])
    assert len(dead) == 1
    assert dead[0][1][b"reason"].startswith(b"retries exhausted")
    assert receiver.posts[tracking] == delivery["retry"]["max"]
    assert redis.zcard(state.keys("51")["retry"]) == 0


def test_lost_answers_do_not_make_duplicates_at_the_receiver(app, resident, receiver, redis):
    # Accepted then the connection dropped; accepted but answered after our timeout.
    receiver.script("accept_drop", "slow_accept")
    first, second = submit(resident, count=2)
    drain(app)
    assert receiver.posts[first] == 2 and receiver.posts[second] == 2  # each was sent again…
    assert receiver.stored_count == {first: 1, second: 1}             # …and stored once
    for tracking in (first, second):
        record = store.read(redis, "51", tracking)
        assert record["status"] == "forwarded"
        assert record["lapor_id"] == receiver.stored[tracking]["id"]


def test_a_retry_does_not_resend_to_channels_that_succeeded(app, resident, receiver, redis, delivery):
    from .standins import Receiver

    case_system = Receiver().start()
    try:
        case_system.script("fail500", "fail500")
        delivery["channels"].append({"name": "kasus", "type": "webhook", "url": case_system.url,
                                     "secret_env": "TEST_WEBHOOK_SECRET", "timeout": 0.5})
        [tracking] = submit(resident)
        drain(app)
        assert case_system.posts[tracking] == 3
        assert receiver.posts[tracking] == 1
        assert set(state.delivered_channels(redis, "51", tracking)) == {"lapor", "kasus"}
        assert store.read(redis, "51", tracking)["status"] == "forwarded"
    finally:
        case_system.stop()


def test_routing_by_kabupaten_and_category(app, resident, receiver, redis, delivery):
    from .standins import Receiver

    health_desk = Receiver().start()
    try:
        delivery["channels"][0]["when"] = {"kabupaten_kode": ["51.01"]}
        delivery["channels"].append({"name": "health", "type": "webhook", "url": health_desk.url,
                                     "secret_env": "TEST_WEBHOOK_SECRET", "when": {"category": ["kesehatan"]}})
        [health] = submit(resident, category="kesehatan")
        [roads] = submit(resident, category="infrastruktur")
        [elsewhere] = submit(resident, category="infrastruktur", kabupaten="Kota Denpasar")  # no code
        drain(app)
        assert set(receiver.stored) == {health, roads}
        assert set(health_desk.stored) == {health}
        dead = redis.xrange(state.keys("51")["dead"])
        assert [d[1][b"tracking"].decode() for d in dead] == [elsewhere]
        assert dead[0][1][b"reason"] == b"no channel routes this complaint"
    finally:
        health_desk.stop()


def test_anonim_and_rahasia_in_the_payload(app, resident, receiver, redis):
    [anonymous] = submit(resident, name="Ketut Sari", contact="ketut@example.org", anonim="y", rahasia="y")
    drain(app)
    raw = b"".join(receiver.bodies)
    assert b"Ketut" not in raw and b"ketut@example.org" not in raw
    body = receiver.stored[anonymous]["body"]
    assert body["anonim"] is True and body["rahasia"] is True
    assert body["reporter"] is None and body["visibility"] == "private"
    assert BODY not in body["title"]
    # Still sealed at rest for the retention period.
    assert store.read(redis, "51", anonymous)["sealed_contact"]


def test_field_mapping_for_the_private_lapor_api(app, resident, receiver, delivery):
    delivery["channels"][0]["fields"] = {"judul": "title", "isi": "body", "anonim": "anonim",
                                         "rahasia": "rahasia", "nama": "reporter.name", "sumber": "=wifi-bali",
                                         "kabupaten": "location.kabupaten_kode"}
    [tracking] = submit(resident, name="Wayan", anonim="y")
    drain(app)
    body = receiver.stored[tracking]["body"]
    assert body == {"judul": body["judul"], "isi": BODY, "anonim": True, "rahasia": False, "nama": None,
                    "sumber": "wifi-bali", "kabupaten": "51.01"}


def test_dead_letter_cli_list_show_retry_purge(app, resident, receiver, redis, runner):
    receiver.script("reject400", "reject400")
    first, second = submit(resident, count=2, name="Nyoman Rai", contact="nyoman@example.org")
    drain(app)
    listing = runner.invoke(args=["deadletters", "list"]).output
    assert first in listing and second in listing and "2 dead letter(s)" in listing
    ids = [line.split()[0] for line in listing.splitlines() if first in line or second in line]
    shown = runner.invoke(args=["deadletters", "show", ids[0]]).output
    assert "HTTP 400" in shown and first in shown
    assert "Nyoman" not in shown and "example.org" not in shown and BODY not in shown
    assert "queued 1" in runner.invoke(args=["deadletters", "retry", ids[0]]).output
    assert "purged 1" in runner.invoke(args=["deadletters", "purge", ids[1]]).output
    drain(app)
    assert store.read(redis, "51", first)["status"] == "forwarded"
    assert redis.xlen(state.keys("51")["dead"]) == 0
    assert redis.zscore(state.keys("51")["retention"], second) is not None  # erasure clock started


def test_operator_show_hides_personal_data(app, resident, receiver, runner):
    [tracking] = submit(resident, name="Nyoman Rai", contact="nyoman@example.org", anonim="y", rahasia="y")
    drain(app)
    out = runner.invoke(args=["complaints", "show", display(tracking)]).output
    assert tracking in out and "ANONIM,RAHASIA" in out and "hidden (anonim)" in out and "forwarded" in out
    assert "Nyoman" not in out and "example.org" not in out and "Puskesmas" not in out
    assert json.loads(out.split("channels: ")[1].split("  last")[0]).keys() == {"lapor"}


def test_without_channels_complaints_wait_in_the_queue(app, resident, redis, delivery):
    delivery["channels"] = []
    [tracking] = submit(resident)
    drain(app)
    assert redis.xlen(store.stream_key("51")) == 1
    assert redis.xlen(state.keys("51")["dead"]) == 0
    assert store.read(redis, "51", tracking)["status"] == "received"
