"""/readyz: the worker's heartbeat, the spool and the oldest waiting complaint; 503 only when a
complaint could not be kept at all (Redis down and the spool not writable)."""
from __future__ import annotations

import time

from portal import create_app
from portal.captive import WORKERS
from portal.complaints.store import stream_key
from portal.spool import Spool
from tests.conftest import make_config


def test_a_fresh_worker_heartbeat_shows_and_a_stale_one_does_not_make_the_node_unready(client, redis):
    redis.hset(WORKERS.format(prov="51"), "web-1-1", int(time.time()) - 2)
    body = client.get("/readyz").json
    assert body["worker"]["stale"] is False
    assert 1 <= body["worker"]["last_seen_seconds_ago"] < 30
    assert set(body["worker"]["consumers"]) == {"web-1-1"}

    redis.hset(WORKERS.format(prov="51"), "web-1-1", int(time.time()) - 600)
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json["status"] == "ready"
    assert response.json["worker"]["stale"] is True
    assert response.json["worker"]["last_seen_seconds_ago"] >= 600


def test_no_worker_ever_seen_is_stale(client):
    body = client.get("/readyz").json
    assert body["worker"] == {"last_seen_seconds_ago": None, "stale": True, "consumers": {}}
    assert body["oldest_waiting_complaint_seconds"] is None
    assert body["spool"] == {"bytes": 0, "oldest_age_seconds": None} and body["spool_pending"] is False


def test_the_oldest_waiting_complaint_counts_the_stream_and_the_spool(client, redis, app):
    # A complaint queued 300 s ago (the stream id carries its time in ms).
    queued_at_ms = int((time.time() - 300) * 1000)
    redis.xadd(stream_key("51"), {"tracking": "ABCD-EFGH-J"}, id=f"{queued_at_ms}-0")
    body = client.get("/readyz").json
    assert 299 <= body["oldest_waiting_complaint_seconds"] < 360

    # A record spooled earlier still (Redis was down then) is older than anything in Redis.
    spool = app.extensions["portal_spool"]
    spool.directory.mkdir(parents=True)
    spool.current.write_text(f'{{"kind":"complaint","at":{time.time() - 1000},"data":{{}}}}\n')
    spool.append("event", {"n": 1})
    body = client.get("/readyz").json
    assert body["spool_pending"] is True and body["spool"]["bytes"] == spool.current.stat().st_size
    assert 999 <= body["spool"]["oldest_age_seconds"] < 1060
    assert 999 <= body["oldest_waiting_complaint_seconds"] < 1060


def test_spool_stats_read_the_oldest_file_first(tmp_path):
    spool = Spool(tmp_path / "spool")
    spool.append("event", {"n": 1})
    (tmp_path / "spool" / "replay-1.jsonl").write_text(
        f'{{"kind":"complaint","at":{time.time() - 50},"data":{{}}}}\n')
    stats = spool.stats()
    assert 49 <= stats["oldest_age_seconds"] < 80
    assert stats["bytes"] == sum(p.stat().st_size for p in (tmp_path / "spool").glob("*.jsonl"))


def test_redis_down_is_still_ready_while_the_spool_can_take_complaints(tmp_path):
    app = create_app(make_config(f"unix://{tmp_path / 'nobody.sock'}", tmp_path / "var"))
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.json["redis"] == "down" and response.json["status"] == "ready"
    assert response.json["worker"] == {"last_seen_seconds_ago": None, "stale": None}


def test_redis_down_and_no_writable_spool_is_not_ready(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")  # VAR_DIR/spool can never be created under a file
    app = create_app(make_config(f"unix://{tmp_path / 'nobody.sock'}", blocker))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["status"] == "not ready" and response.json["redis"] == "down"
