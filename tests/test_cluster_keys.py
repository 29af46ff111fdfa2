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
