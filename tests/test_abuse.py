"""Abuse control without JavaScript: honeypot, fill time and quotas hold a complaint for review.

Nothing caught is dropped: it is stored like any complaint, but in the review
queue (``portal:{p51}:complaints:held``) instead of the delivery stream, and
the receipt says it will be checked before it is forwarded.
"""
from __future__ import annotations

import time

import pytest
from itsdangerous import URLSafeTimedSerializer

from portal.complaints import service, store
from portal.tracking import normalize
from tests.conftest import Resident, stamp_from, tracking_number


def stream_length(redis) -> int:
    return redis.xlen(store.stream_key("51"))


def held(redis) -> dict[str, str]:
    """Tracking number → reason of every held complaint."""
    numbers = [m.decode() for m in redis.zrange(store.held_key("51"), 0, -1)]
    return {n: store.read(redis, "51", n)["held_reason"] for n in numbers}


def shown_number(response) -> str:
    return normalize(tracking_number(response.get_data(as_text=True)))


@pytest.fixture
def app_config(app_config):
    app_config.update(MIN_FILL_SECONDS=3, DEVICE_LIMIT=2, SITE_LIMIT=3)
    return app_config


def test_form_sent_too_fast_is_held_for_review_with_an_honest_receipt(resident, redis):
    resident.arrive(headers={"Accept-Language": "en"})
    response = resident.submit()  # the stamp is fresh: under 3 s
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "A person will check it before it is forwarded" in html
    assert held(redis) == {shown_number(response): "too_fast"}
    assert stream_length(redis) == 0
    record = store.read(redis, "51", shown_number(response))
    assert record["status"] == "held" and record["sealed_text"]  # encrypted like any complaint
    assert "Puskesmas" not in str(record)


def test_form_filled_in_a_normal_time_is_accepted(resident, app, redis):
    resident.arrive(headers={"Accept-Language": "en"})
    response = resident.submit(started=stamp_from(app, 5, "n-1"))
    assert response.status_code == 200
    assert "Your report was received" in response.get_data(as_text=True)
    assert "A person will check it" not in response.get_data(as_text=True)
    assert stream_length(redis) == 1
    assert held(redis) == {}


def test_honeypot_keeps_the_complaint_for_review(resident, app, redis):
    resident.arrive(headers={"Accept-Language": "id"})
    response = resident.submit(started=stamp_from(app, 5, "n-2"), website="http://spam.example")
    html = response.get_data(as_text=True)
    assert 'id="tracking-number"' in html
    assert 'id="held-notice"' in html
    assert "memeriksanya" in html  # said in the resident's language
    assert held(redis) == {shown_number(response): "honeypot"}
    assert stream_length(redis) == 0


def test_resent_held_form_shows_the_same_receipt_and_costs_no_quota(resident, app, redis):
    resident.arrive()
    fields = resident.complaint(started=stamp_from(app, 5, "r-1"), website="autofilled")
    first = resident.client.post(f"/p/{resident.token}/lapor", data=fields)
    again = resident.client.post(f"/p/{resident.token}/lapor", data=fields)
    assert shown_number(first) == shown_number(again)
    assert 'id="held-notice"' in again.get_data(as_text=True)
    assert len(held(redis)) == 1
    for n in range(2):  # the device's whole quota is still there
        assert 'id="held-notice"' not in resident.submit(started=stamp_from(app, 5, f"r-{n + 2}")).get_data(as_text=True)
    assert stream_length(redis) == 2


def test_tampered_stamp_asks_to_send_again(resident, redis):
    resident.arrive()
    response = resident.submit(started="forged")
    assert response.status_code == 400
    assert "Puskesmas tutup" in response.get_data(as_text=True)
    assert stream_length(redis) == 0
    assert held(redis) == {}


def test_stamps_a_day_old_or_from_the_future_are_refused_and_the_older_format_still_read(app):
    with app.test_request_context():
        assert service.read_form_stamp(stamp_from(app, 5, "a-1"))[1] == "a-1"
        assert service.read_form_stamp(stamp_from(app, 86400 + 5, "a-2")) is None
        assert service.read_form_stamp(stamp_from(app, -600, "a-3")) is None  # ten minutes ahead
        assert service.read_form_stamp(stamp_from(app, -30, "a-4"))[1] == "a-4"  # another node's clock
        # A form opened before the upgrade and sent after keeps its nonce (its tracking number).
        older = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="complaint-form")
        started, nonce = service.read_form_stamp(older.dumps([time.time() - 5, "old-1"]))
        assert nonce == "old-1" and abs(time.time() - 5 - started) < 1
        assert service.read_form_stamp(older.dumps([time.time(), "old-2"])[:-2] + "xx") is None


def test_device_limit_holds_the_complaint_beyond_it(resident, app, redis):
    resident.arrive(headers={"Accept-Language": "en"})
    for n in range(2):
        assert resident.submit(started=stamp_from(app, 5, f"d-{n}")).status_code == 200
    response = resident.submit(started=stamp_from(app, 5, "d-3"))
    assert response.status_code == 200
    assert "Your report is kept" in response.get_data(as_text=True)
    assert stream_length(redis) == 2
    assert held(redis) == {shown_number(response): "device_quota"}


def test_arrival_without_mac_still_hits_the_device_limit(client, app, redis):
    resident = Resident(client)
    resident.arrive(mac="", ip="10.5.50.77")
    assert resident.token
    results = [resident.submit(started=stamp_from(app, 5, f"m-{n}")) for n in range(3)]
    assert stream_length(redis) == 2
    assert list(held(redis).values()) == ["device_quota"]
    # Another phone at the same site (another address, no MAC either) has its own quota.
    other = Resident(client)
    other.arrive(mac="", ip="10.5.50.78")
    other.submit(started=stamp_from(app, 5, "m-other"))
    assert stream_length(redis) == 3
    # The counter's key holds a keyed hash, never the address.
    keys = [k.decode() for k in redis.scan_iter(match="portal:{p51}:rl:*")]
    assert keys and not any("10.5.50" in k or "127.0.0.1" in k for k in keys)
    assert all(r.status_code == 200 for r in results)


def test_one_device_cannot_use_up_the_site_quota(client, app, redis):
    greedy = Resident(client)
    greedy.arrive(mac="70:8A:09:65:4D:01", ip="10.5.50.11")
    for n in range(6):  # 2 forwarded, 4 held for the device: none of the 4 counts for the site
        greedy.submit(started=stamp_from(app, 5, f"g-{n}"))
    assert stream_length(redis) == 2
    neighbour = Resident(client)
    neighbour.arrive(mac="70:8A:09:65:4D:02", ip="10.5.50.12")
    response = neighbour.submit(started=stamp_from(app, 5, "neighbour"))
    assert 'id="held-notice"' not in response.get_data(as_text=True)
    assert stream_length(redis) == 3
    assert sorted(held(redis).values()) == ["device_quota"] * 4


def test_site_limit_counts_every_device(client, app, redis):
    for n in range(4):
        resident = Resident(client)
        resident.arrive(mac=f"70:8A:09:65:4D:0{n}", ip=f"10.5.50.{20 + n}")
        resident.submit(started=stamp_from(app, 5, f"s-{n}"))
    assert stream_length(redis) == 3
    assert list(held(redis).values()) == ["site_quota"]


def test_held_and_rejected_complaints_say_so_on_the_status_page(resident, app, redis):
    from portal.complaints import held as review

    resident.arrive()
    number = shown_number(resident.submit(started=stamp_from(app, 5, "st-1"), website="x"))
    page = resident.client.get(f"/status/{number}?lang=en").get_data(as_text=True)
    assert 'id="review-notice"' in page and "a person will check it" in page
    assert review.reject(redis, "51", number, "advertising")
    page = resident.client.get(f"/status/{number}?lang=en").get_data(as_text=True)
    assert "will not be forwarded" in page
    assert "advertising" not in page  # the operator's reason stays internal


def test_a_flood_of_caught_complaints_is_bounded_and_gets_no_receipt(resident, app, redis):
    app.config["HELD_LIMIT"] = 2
    resident.arrive(headers={"Accept-Language": "en"})
    for n in range(2):
        assert 'id="held-notice"' in resident.submit(website="spam", started=stamp_from(app, 5, f"f-{n}")).get_data(
            as_text=True)
    response = resident.submit(website="spam", started=stamp_from(app, 5, "f-3"))
    assert response.status_code == 429
    html = response.get_data(as_text=True)
    assert 'id="tracking-number"' not in html  # no receipt for what was not stored
    assert "nothing you typed is lost" in html and "Puskesmas tutup" in html
    assert len(held(redis)) == 2
