"""Redis Sentinel (issue 15): every part finds the primary through the Sentinels and rides out a failover.

Real servers on loopback (portal/ha_local.py): 1 primary, 2 replicas, 3 Sentinels. Marked
``failover``; part of the default run because a Sentinel failover takes a few seconds here, and
the bug it guards against (the portal broken once the old primary returns as a replica) only
shows with real servers.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from portal import create_app
from portal.complaints import store
from portal.ha_local import Layout
from portal.sites import import_sites, parse_csv
from tests.conftest import SITES_CSV, Resident, make_config, tracking_number
from portal.tracking import normalize

pytestmark = pytest.mark.failover
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def sentinel_set(tmp_path):
    layout = Layout(tmp_path / "ha", nodes=0)
    layout.start_redis_set()
    yield layout
    layout.stop()


def sentinel_config(layout, var, **overrides) -> dict:
    return make_config("redis://sentinel-managed/0", var, REDIS_SENTINELS=layout.sentinels_setting,
                       REDIS_SERVICE="portal", REDIS_MIN_REPLICAS=1, REDIS_RETRY_AFTER=0.5,
                       DEVICE_LIMIT=10000, SITE_LIMIT=10000, **overrides)


def journey(app) -> tuple[Resident, list[int]]:
    """Arrival, complaint, grant; return the resident and the three status codes."""
    resident = Resident(app.test_client())
    codes = [resident.arrive().status_code]
    receipt = resident.submit()
    codes.append(receipt.status_code)
    codes.append(resident.connect().status_code)
    resident.tracking = normalize(tracking_number(receipt.get_data(as_text=True))) if receipt.status_code == 200 else ""
    return resident, codes


def test_every_part_follows_the_primary_through_a_failover(sentinel_set, tmp_path):
    layout = sentinel_set
    outbox = tmp_path / "outbox"
    app = create_app(sentinel_config(layout, tmp_path / "var", OUTBOX_DIR=str(outbox)))
    import_sites(layout.primary(), parse_csv(SITES_CSV))
    spool = app.extensions["portal_spool"]

    # Before: sessions and complaints in Redis, the complaint confirmed by a replica (no spool).
    first, codes = journey(app)
    assert codes == [200, 200, 303] and not first.token.startswith("x.")
    assert not spool.pending()
    assert store.read(layout.primary(), "51", first.tracking)["status"] == "received"

    # The worker and the CLI go through the same factory.
    env = dict(os.environ, PORTAL_REDIS_URL="redis://sentinel-managed/0", PORTAL_REDIS_SENTINELS=layout.sentinels_setting,
               PORTAL_REDIS_MIN_REPLICAS="1", PORTAL_VAR_DIR=str(tmp_path / "var"), PORTAL_OUTBOX_DIR=str(outbox),
               **{f"PORTAL_{k}": app.config[k] for k in ("SECRET_KEY", "DEVICE_KEY", "DATA_KEYS")})
    worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "portal", "deliver", "--consumer", "s-1"],
                              env=env, cwd=ROOT, stdout=open(tmp_path / "worker.log", "ab"), stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: first.tracking in delivered(outbox), 30)
        old = layout.primary_port()
        layout.kill_redis(old)
        killed = time.monotonic()
        # During the failover: every answer fails open, none is a 5xx.
        during = []
        while layout.primary_port() in (old, None):
            resident, codes = journey(app)
            assert all(code < 500 for code in codes), codes
            assert codes == [200, 200, 303]
            during.append(resident.tracking)
            assert time.monotonic() - killed < 30, "no failover within 30 s"
            time.sleep(0.2)
        # After: a new primary takes sessions and replicated complaints again.
        wait_for(lambda: not journey(app)[0].token.startswith("x."), 20)
        layout.restart_as_replica(old)  # the old primary back, now a replica: READONLY to anyone still on it
        later = []
        for _ in range(5):
            resident, codes = journey(app)
            assert codes == [200, 200, 303]
            later.append(resident.tracking)
        assert not resident.token.startswith("x.")
        # Everything spooled during the failover reaches the new primary, and the worker delivers all.
        wait_for(lambda: not spool.pending(), 30)
        wanted = [first.tracking, *during, *later]
        wait_for(lambda: set(wanted) <= delivered(outbox), 40)
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()
        primary = layout.primary()
        # Delivered and settled (XACK + XDEL just after the outbox write): nothing left, nothing twice.
        wait_for(lambda: primary.xlen(store.stream_key("51")) == 0, 20)
        cli = subprocess.run([sys.executable, "-m", "flask", "--app", "portal", "complaints", "show", later[-1]],
                             env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert cli.returncode == 0, cli.stderr
        assert later[-1] in cli.stdout
    finally:
        worker.terminate()
        code = worker.wait(timeout=30)
    assert code == 0


def test_a_complaint_no_replica_confirms_is_spooled_and_replayed_once(redis, tmp_path, redis_server):
    # One server, no replica: WAIT 1 confirms nothing, so the receipt rests on the spool as well.
    app = create_app(make_config(redis_server.url, tmp_path / "var", REDIS_MIN_REPLICAS=1, REDIS_WAIT_TIMEOUT=0.05))
    import_sites(redis, parse_csv(SITES_CSV))
    resident, codes = journey(app)
    assert codes == [200, 200, 303]
    assert not resident.token.startswith("x.")  # Redis answered: no breaker, sessions still in Redis
    spool = app.extensions["portal_spool"]
    assert spool.pending()
    assert store.read(redis, "51", resident.tracking) is not None  # on the primary already
    with app.app_context():
        from portal.complaints.service import replay_spool

        assert replay_spool() == 0           # still unconfirmed: the spool keeps it
        app.config["REDIS_MIN_REPLICAS"] = 0  # (a replica confirms)
        assert replay_spool() == 2           # the complaint and its event
    assert not spool.pending()
    assert redis.xlen(store.stream_key("51")) == 1  # one stream entry: the replay found the record


def test_the_worker_run_against_the_sentinels_is_the_factory_s_client(sentinel_set, tmp_path):
    app = create_app(sentinel_config(sentinel_set, tmp_path / "var", OUTBOX_DIR=str(tmp_path / "outbox")))
    from portal.delivery.cli import build_forwarder

    with app.app_context():
        forwarder = build_forwarder(app, "s-2")
    assert type(forwarder.redis.connection_pool).__name__ == "_BlockingSentinelPool"
    assert forwarder.redis.connection_pool.get_master_address()[1] == sentinel_set.primary_port()


def delivered(outbox) -> set[str]:
    """Tracking numbers in the outbox channel (one JSON file each, named with dashes)."""
    return {path.stem.replace("-", "") for path in outbox.glob("*.json")}


def wait_for(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s")


def test_the_radius_api_follows_the_primary(sentinel_set, tmp_path):
    from portal.sites import RECORDS, Site, save_site
    from tests.conftest import MIKROTIK_ARRIVAL
    from tests.radius.conftest import API_TOKEN, MIKROTIK_SITE, RADIUS_SETTINGS, form_fields

    layout = sentinel_set
    app = create_app(sentinel_config(layout, tmp_path / "var", RADIUS_API_TOKEN=API_TOKEN))
    primary = layout.primary()
    import_sites(primary, parse_csv(SITES_CSV))
    site = Site.from_json(primary.hget(RECORDS, MIKROTIK_SITE))
    save_site(primary, Site(**{**site.__dict__, "settings": dict(RADIUS_SETTINGS)}))
    auth = {"Authorization": f"Bearer {API_TOKEN}"}

    def authorize_new_credential() -> int:
        resident = Resident(app.test_client())
        resident.arrive()
        fields = form_fields(resident.connect().get_data(as_text=True))
        body = {"User-Name": {"type": "string", "value": [fields["username"]]},
                "Calling-Station-Id": {"type": "string", "value": [MIKROTIK_ARRIVAL["mac"]]}}
        return resident.client.post("/radius/authorize", json=body, headers=auth).status_code

    assert authorize_new_credential() == 200
    old = layout.primary_port()
    layout.kill_redis(old)
    wait_for(lambda: layout.primary_port() not in (old, None), 30)
    wait_for(lambda: authorize_new_credential() == 200, 20)  # issued and checked on the new primary
