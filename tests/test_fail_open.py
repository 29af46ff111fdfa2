"""Fail open and lose nothing: Redis stopped, killed and restarted under a real app."""
from __future__ import annotations

import pytest
import redis as redis_py

from portal import create_app
from portal.complaints import store
from portal.complaints.service import replay_spool
from portal.tracking import normalize
from tests.conftest import app_on, Resident, make_config, tracking_number


@pytest.fixture
def fragile_app(own_redis, tmp_path):
    app = app_on(own_redis.url, tmp_path / "var")
    return app


def records(url: str) -> int:
    return redis_py.Redis.from_url(url).xlen(store.stream_key("51"))


def test_landing_and_grant_work_with_redis_down(fragile_app, own_redis):
    resident = Resident(fragile_app.test_client())
    assert resident.arrive().status_code == 200  # warms the in-process site registry
    own_redis.stop()
    response = resident.arrive()
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert resident.token.startswith("x.")  # the session travels in its token
    assert "Wantilan Desa Adat Baler Bale Agung" in html
    grant = resident.connect()
    assert grant.status_code == 303
    assert "username=T-70%3A8A%3A09%3A65%3A4D%3AEC" in grant.headers["Location"]


def test_cold_process_with_redis_down_still_grants(own_redis, tmp_path):
    app = create_app(make_config(own_redis.url, tmp_path / "var"))
    own_redis.stop()
    resident = Resident(app.test_client())
    response = resident.arrive()
    assert response.status_code == 200
    assert "SP4N LAPOR!" in response.get_data(as_text=True)  # the built-in campaign
    assert resident.connect().status_code == 303


def test_complaint_is_spooled_while_redis_is_down_and_moves_back(fragile_app, own_redis):
    resident = Resident(fragile_app.test_client())
    resident.arrive()
    fields = resident.complaint()
    own_redis.stop()
    response = resident.client.post(f"/p/{resident.token}/lapor", data=fields)
    assert response.status_code == 200
    spooled = normalize(tracking_number(response.get_data(as_text=True)))
    assert fragile_app.extensions["portal_spool"].pending()

    own_redis.start()  # same data directory: AOF brings back what was there
    with fragile_app.app_context():
        assert replay_spool() >= 1
        assert replay_spool() == 0  # the spool is empty now
    client = redis_py.Redis.from_url(own_redis.url)
    assert store.read(client, "51", spooled)["status"] == "received"
    assert records(own_redis.url) == 1


def test_next_stored_complaint_replays_the_spool_by_itself(fragile_app, own_redis):
    resident = Resident(fragile_app.test_client())
    resident.arrive()
    first = resident.complaint()
    own_redis.stop()
    resident.client.post(f"/p/{resident.token}/lapor", data=first)
    own_redis.start()
    fragile_app.extensions["portal_redis"][1].reset()
    again = Resident(fragile_app.test_client())
    again.arrive()
    assert again.submit().status_code == 200
    assert records(own_redis.url) == 2
    assert not fragile_app.extensions["portal_spool"].pending()


def test_replaying_twice_does_not_duplicate(fragile_app, own_redis, tmp_path):
    resident = Resident(fragile_app.test_client())
    resident.arrive()
    fields = resident.complaint()
    own_redis.stop()
    resident.client.post(f"/p/{resident.token}/lapor", data=fields)
    spool = fragile_app.extensions["portal_spool"]
    saved = spool.current.read_bytes()
    own_redis.start()
    with fragile_app.app_context():
        replay_spool()
        spool.current.write_bytes(saved)  # as if a crash left the file behind after replay
        replay_spool()
    assert records(own_redis.url) == 1


def test_received_complaint_survives_a_redis_crash(fragile_app, own_redis):
    resident = Resident(fragile_app.test_client())
    resident.arrive()
    shown = normalize(tracking_number(resident.submit().get_data(as_text=True)))
    own_redis.stop(kill=True)  # SIGKILL: no chance to save on shutdown
    own_redis.start()
    assert store.read(redis_py.Redis.from_url(own_redis.url), "51", shown) is not None
