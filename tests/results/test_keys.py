"""The results keys are Cluster-ready: what one script or MULTI touches shares a slot."""
from __future__ import annotations

from redis.crc import key_slot

from portal import events
from portal.complaints import store
from portal.results import alerts


def slot(key: str) -> int:
    return key_slot(key.encode())


def test_contact_index_shares_the_record_slot():
    # store.write's Lua script adds the tracking number to the contact's set with the record.
    assert slot(store.contact_key("51", "ab" * 32)) == slot(store.record_key("51", "K7Q2MX9DR"))
    assert slot(store.contact_key("51", "ab" * 32)) == slot(store.held_key("51"))


def test_one_scope_keys_share_a_slot_and_scopes_spread():
    keys = [events.UNIQUES.format(scope="r5171", day=d, step=s, campaign=c, variant=v)
            for d in ("20261201", "20261202") for s in events.STEPS for c, v in (("a", "1"), ("b", ""))]
    keys.append(events.COUNTERS.format(scope="r5171", day="20261201"))
    assert len({slot(k) for k in keys}) == 1  # PFCOUNT over days and variants works on Cluster
    scopes = {slot(events.COUNTERS.format(scope=f"s{n}", day="20261201")) for n in range(50)}
    assert len(scopes) > 40  # sites spread over the shards


def test_province_wide_keys_use_the_province_tag():
    for key in (alerts.ALERTS.format(prov="51"), alerts.LOCK.format(prov="51"),
                events.GRANTS.format(prov="51", day="20261201"), events.COUNTERS.format(scope="p51", day="20261201")):
        assert key.startswith("portal:{p51}:")
