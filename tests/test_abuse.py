"""Abuse control without JavaScript: honeypot, minimum fill time, per-device and per-site limits."""
from __future__ import annotations

import time

import pytest

from portal.complaints import service, store


def stamp_from(app, seconds_ago: float, nonce: str) -> str:
    with app.test_request_context():
        return service._serializer().dumps([time.time() - seconds_ago, nonce])


def stream_length(redis) -> int:
    return redis.xlen(store.stream_key("51"))


@pytest.fixture
def app_config(app_config):
    app_config.update(MIN_FILL_SECONDS=3, DEVICE_LIMIT=2, SITE_LIMIT=3)
    return app_config


def test_form_sent_too_fast_is_refused_with_input_kept(resident, redis):
    resident.arrive(headers={"Accept-Language": "en"})
    response = resident.submit()  # the stamp is fresh: under 3 s
    html = response.get_data(as_text=True)
    assert response.status_code == 429
    assert "very fast" in html
    assert "Puskesmas tutup jam 10 pagi" in html  # nothing typed is lost
    assert stream_length(redis) == 0


def test_form_filled_in_a_normal_time_is_accepted(resident, app, redis):
    resident.arrive()
    response = resident.submit(started=stamp_from(app, 5, "n-1"))
    assert response.status_code == 200
    assert stream_length(redis) == 1


def test_honeypot_shows_a_receipt_but_stores_nothing(resident, app, redis):
    resident.arrive()
    response = resident.submit(started=stamp_from(app, 5, "n-2"), website="http://spam.example")
    assert 'id="tracking-number"' in response.get_data(as_text=True)
    assert stream_length(redis) == 0


def test_tampered_stamp_asks_to_send_again(resident, redis):
    resident.arrive()
    response = resident.submit(started="forged")
    assert response.status_code == 400
    assert "Puskesmas tutup" in response.get_data(as_text=True)
    assert stream_length(redis) == 0


def test_device_limit(resident, app, redis):
    resident.arrive(headers={"Accept-Language": "en"})
    for n in range(2):
        assert resident.submit(started=stamp_from(app, 5, f"d-{n}")).status_code == 200
    response = resident.submit(started=stamp_from(app, 5, "d-3"))
    assert response.status_code == 429
    html = response.get_data(as_text=True)
    assert "Too many reports" in html and "Puskesmas tutup" in html
    assert stream_length(redis) == 2


def test_site_limit_counts_every_device(client, app, redis):
    from tests.conftest import Resident

    accepted = 0
    for n in range(4):
        resident = Resident(client)
        resident.arrive(mac=f"70:8A:09:65:4D:0{n}")
        if resident.submit(started=stamp_from(app, 5, f"s-{n}")).status_code == 200:
            accepted += 1
    assert accepted == 3
    assert stream_length(redis) == 3
