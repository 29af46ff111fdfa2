"""Keys written together (MULTI or one Lua script) share a hash slot, so Redis Cluster can hold them."""
from __future__ import annotations

from redis.crc import key_slot

from portal import sites
from portal.complaints import store
from portal.delivery import state


def slots(keys) -> set[int]:
    return {key_slot(key.encode()) for key in keys}


def test_complaint_and_delivery_keys_of_a_province_share_one_slot():
    keys = state.keys("51", "ABCD1234X")
    assert keys["record"] == store.record_key("51", "ABCD1234X")
    assert len(slots(keys.values())) == 1


def test_provinces_do_not_share_a_slot_by_construction():
    # One stream per province (docs/scale.md §3): provinces spread over the cluster.
    assert slots([store.stream_key("51")]) != slots([store.stream_key("52")])


def test_site_registry_keys_share_one_slot():
    assert len(slots([sites.RECORDS, sites.BY_GATEWAY, sites.VERSION])) == 1


def test_sessions_are_not_pinned_to_one_slot():
    # Sessions carry no hash tag, so they spread over every shard.
    tokens = [f"portal:sess:token{n}" for n in range(50)]
    assert len(slots(tokens)) > 40


# --- a real 3-primary cluster (tests/cluster.py), in every pass -------------------------------

import pytest  # noqa: E402
import redis as redis_py  # noqa: E402

from portal.redis import connect, DOWN_ERRORS  # noqa: E402
from tests.cluster import LocalCluster  # noqa: E402


@pytest.fixture
def cluster(tmp_path):
    import os

    server = LocalCluster(tmp_path / "cluster", binary=os.environ.get("PORTAL_TEST_REDIS_BINARY")).start()
    yield server
    server.stop()


def test_the_factory_speaks_cluster_and_a_complaint_is_one_slot(cluster):
    client = connect(cluster.url, timeout=2)
    assert isinstance(client, redis_py.cluster.RedisCluster)
    complaint = store.StoredComplaint(plain={"tracking": "ABCD1234X", "created_at": "1.0"}, sealed_text="x")
    assert store.write(client, "51", complaint) is True
    assert store.write(client, "51", complaint) is False  # one record, one stream entry
    assert client.xlen(store.stream_key("51")) == 1
    assert cluster.problems() == []


def test_the_cluster_pass_catches_crossslot_and_keyspace_walks(cluster):
    portal_client = connect(cluster.url, timeout=2)          # client name "portal"
    other = redis_py.cluster.RedisCluster(host="127.0.0.1", port=cluster.ports[0])
    other.keys("*")                                          # a test's own check: allowed
    node = cluster.ports[0]
    with pytest.raises(redis_py.ResponseError, match="same slot"):  # CROSSSLOT
        redis_py.Redis(port=node).mset({"a": 1, "b": 2, "c": 3, "portal:x": 4})
    portal_client.keys("portal:*")
    import time

    deadline = time.monotonic() + 5
    problems = []
    while time.monotonic() < deadline and len(problems) < 2:
        problems += cluster.problems()
        time.sleep(0.1)
    assert any("CROSSSLOT" in p for p in problems)
    assert any("KEYS portal:*" in p for p in problems)
    assert not any("KEYS *" in p for p in problems)


def test_an_unreachable_cluster_is_redis_down_for_the_portal(cluster):
    client = connect(cluster.url, timeout=0.5)
    client.set("k", "v")
    cluster.stop(kill=True)
    with pytest.raises(DOWN_ERRORS):
        client.get("k")
    with pytest.raises(DOWN_ERRORS):
        with client.pipeline(transaction=False) as pipe:
            pipe.get("k")
            pipe.execute()


def test_wait_goes_to_the_primary_of_the_complaint_s_slot(cluster):
    from portal.redis import NotReplicatedError

    client = connect(cluster.url, timeout=2)
    complaint = store.StoredComplaint(plain={"tracking": "WAIT1234X", "created_at": "1.0"}, sealed_text="x")
    # These primaries have no replica: the WAIT on the record's node confirms none.
    with pytest.raises(NotReplicatedError) as refused:
        store.write(client, "51", complaint, replicas=1, wait_timeout=0.05)
    assert refused.value.created is True
    assert store.read(client, "51", "WAIT1234X")["status"] == "received"
    assert cluster.problems() == []


def test_a_pipelined_script_runs_on_the_node_of_its_keys(cluster):
    # events.add_to queues one EVAL per scope on a pipeline; redis-py's ClusterPipeline has no eval.
    client = connect(cluster.url, timeout=2)
    with client.pipeline(transaction=False) as pipe:
        for tag in ("p51", "p52", "p53"):
            pipe.eval("redis.call('INCR', KEYS[1]) return redis.call('INCR', KEYS[2])", 2,
                      f"portal:{{{tag}}}:a", f"portal:{{{tag}}}:b")
        pipe.get("portal:{p51}:a")
        assert pipe.execute() == [1, 1, 1, b"1"]
    assert cluster.problems() == []


def test_a_pipelined_registered_script_runs_on_the_node_of_its_keys(cluster):
    # Scripts registered once (EVALSHA) and queued on a pipeline, as the events batch does.
    client = connect(cluster.url, timeout=2)
    bump = client.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    with client.pipeline(transaction=False) as pipe:
        for tag in ("p51", "p52", "p53"):
            bump(keys=[f"portal:{{{tag}}}:n"], args=[2], client=pipe)
        assert pipe.execute() == [2, 2, 2]
    assert cluster.problems() == []
