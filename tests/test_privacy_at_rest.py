"""Raw MAC and IP never reach the disk in clear: not the AOF, not the spool (PDP law).

Each journey runs on a Redis server of its own with AOF ``always``, so the test reads
every byte the server wrote, including what an expired session left in the log.
"""
from __future__ import annotations

import re
from pathlib import Path


from portal import create_app
from tests.conftest import app_on, MIKROTIK_ARRIVAL, Resident, make_config

MAC = MIKROTIK_ARRIVAL["mac"]
IP = MIKROTIK_ARRIVAL["ip"]
# The MAC as any vendor or library might write it: 70:8A:09…, 70-8a-09…, 708a09…, 708a.0965…
MAC_ANY = re.compile(rb"70[:\-.]?8a[:\-.]?09[:\-.]?65[:\-.]?4d[:\-.]?ec", re.IGNORECASE)


def disk_bytes(*roots: Path) -> bytes:
    """Everything written under *roots*."""
    return b"".join(p.read_bytes() for root in roots for p in sorted(root.rglob("*")) if p.is_file())


def walk_journey(client) -> Resident:
    resident = Resident(client)
    assert resident.arrive().status_code == 200
    client.get(f"/p/{resident.token}?lang=en")
    assert resident.submit().status_code == 200
    assert resident.connect().status_code in (200, 303)
    return resident


def test_a_journey_leaves_no_raw_mac_or_ip_in_the_aof(own_redis, tmp_path):
    pass

    app = app_on(own_redis.url, tmp_path / "var")
    resident = walk_journey(app.test_client())
    # The journey did reach the disk: its complaint stream entry is in the AOF.
    written = disk_bytes(own_redis.data_dir)
    assert b"complaint" in written
    assert not MAC_ANY.search(written)
    assert IP.encode() not in written
    assert resident.token.encode() not in written


def test_a_journey_while_redis_is_down_leaves_no_raw_mac_or_ip_in_the_spool(own_redis, tmp_path):
    app = create_app(make_config(own_redis.url, tmp_path / "var"))
    own_redis.stop()
    walk_journey(app.test_client())
    spooled = disk_bytes(tmp_path / "var")
    assert spooled, "the complaint should have gone to the spool"
    assert not MAC_ANY.search(spooled)
    assert IP.encode() not in spooled
