"""Signed status callbacks from the receiver: verified, replay-proof, idempotent."""
from __future__ import annotations

import json
import time

from portal.complaints import store
from portal.delivery import signing
from portal.tracking import display

from .conftest import CALLBACK_SECRET, drain, submit


def post(client, data: dict, *, secret: str = CALLBACK_SECRET, now: float | None = None, body: bytes | None = None):
    raw = body if body is not None else json.dumps(data).encode()
    headers = signing.sign(secret, json.dumps(data).encode() if body is not None else raw, now=now)
    return client.post("/callbacks/lapor", data=raw, headers={**headers, "Content-Type": "application/json"})


def test_answered_callback_moves_the_status_once(app, resident, client, redis):
    [tracking] = submit(resident)
    drain(app)
    data = {"tracking": display(tracking), "status": "answered"}
    raw = json.dumps(data).encode()
    headers = {**signing.sign(CALLBACK_SECRET, raw), "Content-Type": "application/json"}
    first = client.post("/callbacks/lapor", data=raw, headers=headers)
    assert first.status_code == 200 and first.json["result"] == "updated"
    again = client.post("/callbacks/lapor", data=raw, headers=headers)  # the same request replayed
    assert again.status_code == 200 and again.json["result"] == "duplicate"
    resent = post(client, data, now=time.time() - 5)  # the receiver sends the same change anew
    assert resent.status_code == 200 and resent.json["result"] == "unchanged"
    record = store.read(redis, "51", tracking)
    assert record["status"] == "answered"
    assert [step for step, _ in json.loads(record["history"])] == ["received", "forwarded", "answered"]
    page = client.get(f"/status/{display(tracking)}?lang=en").get_data(as_text=True)
    assert page.count('class="done"') == 3


def test_forged_and_replayed_callbacks_are_refused(app, resident, client, redis):
    [tracking] = submit(resident)
    data = {"tracking": tracking, "status": "answered"}
    assert post(client, data, secret="guessed").status_code == 401
    assert post(client, data, now=time.time() - 3600).status_code == 401  # an old capture
    tampered = post(client, data, body=json.dumps({"tracking": tracking, "status": "forwarded"}).encode())
    assert tampered.status_code == 401
    assert client.post("/callbacks/lapor", json=data).status_code == 401  # unsigned
    assert store.read(redis, "51", tracking)["status"] == "received"


def test_callback_can_carry_the_lapor_id_and_an_early_answer_is_not_undone(app, resident, client, redis):
    [tracking] = submit(resident)
    reply = post(client, {"tracking": tracking, "status": "answered", "lapor_id": "7001",
                          "lapor_url": "javascript:alert(1)"})
    assert reply.status_code == 200
    drain(app)  # the worker's "forwarded" comes after the answer
    record = store.read(redis, "51", tracking)
    assert record["status"] == "answered"
    assert "lapor_url" not in record or record["lapor_url"].startswith("https://")


def test_unknown_tracking_and_bad_status(app, client):
    assert post(client, {"tracking": "ZZZZ-ZZZZ-Z", "status": "answered"}).status_code == 422
    assert post(client, {"tracking": "0000-0000-0", "status": "answered"}).status_code == 404
    assert post(client, {"tracking": "0000-0000-0", "status": "closed"}).status_code == 422
