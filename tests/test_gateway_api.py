"""What routers call: openNDS authmon, WiFiDog auth/ping/portal, and signed heartbeats."""
from __future__ import annotations

import base64
import json
import time
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from portal import heartbeat
from portal.gateway_steps import AUTHMON_QUEUE, WIFIDOG_TOKEN
from tests.hotspot_hooks.helpers import add_site, replay

GW = "50b78b0d963cdfadda490f55db0e81035b371afce83335c15a881c30a5277741"
RHID = "ea1d0c0f952a860e187c774f94de7188507c0dcc6197c3b8daa383b244eeadc7"


SITE = "BALI-ONDS"
KEY = "authmon-key-of-bali-onds-0001"
FAS_PATH = f"/hotspot/opennds/{SITE}/{KEY}"


@pytest.fixture(autouse=True)
def authmon_site(app, redis):
    """The openNDS site whose router polls with the kit's faspath."""
    return add_site(app, redis, site_id=SITE, vendor="opennds", gateway_id="openNDS Node:e4956e4d641c",
                    settings={"options": {"fas_secure_enabled": "3"}}, secrets={"authmon_key": KEY})


def authmon(client, action, payload="none", gatewayhash=GW, path=FAS_PATH):
    response = client.post(path, data={"auth_get": action, "gatewayhash": gatewayhash, "payload": payload},
                           headers={"User-Agent": "openNDS(authmon;NDS:10.1.2;)"})
    return response.status_code, response.get_data(as_text=True)


def queue(redis, rhid=RHID, entry=f"{RHID} 60 0 0 0 0 Y3VzdG9t", at=None, site=SITE):
    redis.hset(AUTHMON_QUEUE.format(site, GW), rhid, f"{time.time() if at is None else at:.0f} {entry}")


def test_authmon_view_with_nothing_queued_is_a_bare_star(client):
    assert authmon(client, "view") == (200, "*")


def test_authmon_view_lists_entries_rawurlencoded_and_keeps_them(client, redis):
    queue(redis)
    assert authmon(client, "view") == (200, "* " + quote(f"{RHID} 60 0 0 0 0 Y3VzdG9t", safe=""))
    assert redis.hexists(AUTHMON_QUEUE.format(SITE, GW), RHID)


def test_authmon_acknowledgement_removes_entries_base64_or_clear(client, redis):
    other = "b" * 64
    queue(redis)
    queue(redis, rhid=other, entry=f"{other} 60 0 0 0 0 x")
    payload = base64.b64encode(f"* {RHID}".encode()).decode()  # newer authmon base64-encodes
    assert authmon(client, "view", payload) == (200, "ack")
    assert not redis.hexists(AUTHMON_QUEUE.format(SITE, GW), RHID)
    assert authmon(client, "view", f"* {other}") == (200, "ack")
    assert authmon(client, "view") == (200, "*")


def test_authmon_ack_of_an_unknown_rhid_grants_nothing(client, redis):
    assert authmon(client, "view", "* " + "c" * 64) == (200, "ack")
    assert not redis.exists("portal:authmon:ack:" + "c" * 64)


def test_authmon_list_sends_and_deletes(client, redis):
    queue(redis)
    status, body = authmon(client, "list")
    assert status == 200 and body.startswith("* ") and RHID in body
    assert authmon(client, "list") == (200, "*")


def test_authmon_clear_and_stale_entries(client, redis):
    queue(redis, at=time.time() - 3600)
    assert authmon(client, "view") == (200, "*")  # older than AUTHMON_TTL: dropped
    queue(redis)
    assert authmon(client, "clear") == (200, "ack")
    assert not redis.exists(AUTHMON_QUEUE.format(SITE, GW))


def test_authmon_deauthed_is_acknowledged_and_not_kept(client, redis):
    assert authmon(client, "deauthed", base64.b64encode(b"0e:2a:69:75:97:18 idle").decode()) == (200, "ack")
    assert not any(b"0e:2a" in k for k in redis.keys("*"))


@pytest.mark.parametrize(("action", "gatewayhash"), [("view", "nothex"), ("explode", GW)])
def test_authmon_bad_calls_are_refused(client, action, gatewayhash):
    assert authmon(client, action, gatewayhash=gatewayhash)[0] == 400


def test_authmon_without_the_site_key_sees_and_changes_nothing(app, client, redis):
    # Before: anyone who could compute a gateway's hash listed, drained or cleared its grants.
    add_site(app, redis, site_id="BALI-OTHER", vendor="opennds", gateway_id="hs-other",
             secrets={"authmon_key": "the-other-sites-key-0002"})
    add_site(app, redis, site_id="BALI-NOKEY", vendor="opennds", gateway_id="hs-nokey")
    queue(redis)
    for path in ("/hotspot/opennds", "/gateway/opennds/authmon", f"/hotspot/opennds/{SITE}/{'k' * 29}",
                 f"/hotspot/opennds/{SITE}/the-other-sites-key-0002", "/hotspot/opennds/BALI-NOKEY/" + "k" * 20,
                 f"/hotspot/opennds/NO-SUCH-SITE/{KEY}"):
        for action in ("view", "list", "clear"):
            status, body = authmon(client, action, path=path)
            assert status == 403 and RHID not in body, (path, action)
    # Another site's key only ever reaches that site's own (empty) queue.
    assert authmon(client, "list", path="/hotspot/opennds/BALI-OTHER/the-other-sites-key-0002") == (200, "*")
    assert authmon(client, "view") == (200, "* " + quote(f"{RHID} 60 0 0 0 0 Y3VzdG9t", safe=""))


def test_a_resident_posting_to_the_fas_url_still_arrives(client):
    response = client.post("/hotspot/opennds", data={"fas": "bm90IGEgcGF5bG9hZA=="})
    assert response.status_code == 403  # handled as an arrival (no valid hid), not as authmon
    assert response.mimetype == "text/html"


# --- WiFiDog -------------------------------------------------------------------------------------

@pytest.fixture
def wifidog_grant(app, redis, resident):
    add_site(app, redis, site_id="BALI-WDOG", vendor="wifidog", gateway_id="001217DA42D2", settings={"minutes": 30})
    replay(resident, "wifidog", "login")
    return parse_qs(urlsplit(resident.connect().headers["Location"]).query)["token"][0]


def auth(client, token, stage="login", mac="b8:27:eb:3d:11:8c", gw_id="001217DA42D2"):
    response = client.get(f"/wifidog/auth/?stage={stage}&ip=192.168.1.136&mac={mac}&token={token}"
                          f"&incoming=10&outgoing=20&gw_id={gw_id}", headers={"User-Agent": "WiFiDog 1.3.0"})
    assert response.mimetype == "text/plain"
    return response.get_data(as_text=True)


def test_wifidog_token_allows_only_the_session_device_and_gateway(client, wifidog_grant):
    assert auth(client, wifidog_grant) == "Auth: 1"
    assert auth(client, wifidog_grant, stage="counters") == "Auth: 1"
    assert auth(client, wifidog_grant, mac="b8:27:eb:00:00:01") == "Auth: 0"
    assert auth(client, wifidog_grant, gw_id="OTHERGATEWAY") == "Auth: 0"
    assert auth(client, "not-a-token") == "Auth: 0"


def test_wifidog_logout_and_expiry_end_the_session(client, redis, wifidog_grant):
    assert auth(client, wifidog_grant, stage="logout") == "Auth: 0"
    assert auth(client, wifidog_grant) == "Auth: 0"


def test_wifidog_counters_after_the_granted_minutes_say_no(client, redis, wifidog_grant):
    key = next(redis.scan_iter(match=WIFIDOG_TOKEN.format("*")))  # every node's keys on a cluster
    record = json.loads(redis.get(key))
    assert "B8:27:EB" not in redis.get(key).decode().upper()  # device id only, never the MAC
    assert record["until"] > time.time() + 29 * 60
    redis.set(key, json.dumps({**record, "until": time.time() - 1}))
    assert auth(client, wifidog_grant, stage="counters") == "Auth: 0"


def test_wifidog_ping_answers_pong_and_records_a_heartbeat(app, client, redis):
    add_site(app, redis, site_id="BALI-WDOG", vendor="wifidog", gateway_id="001217DA42D2")
    response = client.get("/wifidog/ping/?gw_id=001217DA42D2&sys_uptime=3600&sys_memfree=20000&sys_load=0.25&wifidog_uptime=3500")
    assert response.get_data(as_text=True) == "Pong"
    assert heartbeat.last_seen(redis, "BALI-WDOG")["load"] == "0.25"
    assert client.get("/wifidog/ping/?gw_id=UNKNOWN").get_data(as_text=True) == "Pong"
    assert heartbeat.stale_sites(redis, province="51", older_than=-60) == ["BALI-WDOG"]


def test_wifidog_portal_page_and_default_login_path(app, client, redis):
    assert client.get("/wifidog/portal/?gw_id=001217DA42D2&token=x").status_code == 200
    login = client.get("/wifidog/login/?gw_address=192.168.1.1&gw_port=2060&gw_id=001217DA42D2&ip=192.168.1.136&mac=b8:27:eb:3d:11:8c")
    assert login.status_code == 200 and "/connect" in login.get_data(as_text=True)


# --- signed heartbeat ----------------------------------------------------------------------------

@pytest.fixture
def beating_site(app, redis):
    add_site(app, redis, site_id="BALI-HB", vendor="mikrotik", gateway_id="hs-hb", secrets={"heartbeat_key": "k3y"})
    return "BALI-HB"


def test_static_signed_heartbeat_is_recorded(client, redis, beating_site):
    sig = heartbeat.signature("k3y", beating_site)
    assert client.get(f"/gateway/heartbeat/{beating_site}?sig={sig}&load=1.5").get_data(as_text=True) == "ok"
    seen = heartbeat.last_seen(redis, beating_site)
    assert seen["load"] == "1.50" and seen["via"] == "signed" and abs(float(seen["seen"]) - time.time()) < 5


def test_timed_heartbeat_cannot_be_replayed_or_stale(client, beating_site):
    t = str(int(time.time()))
    url = f"/gateway/heartbeat/{beating_site}?t={t}&load=0.7&sig={heartbeat.signature('k3y', beating_site, t, '0.7')}"
    assert client.get(url).status_code == 200
    assert client.get(url).status_code == 403
    old = str(int(time.time()) - 3600)
    stale = f"/gateway/heartbeat/{beating_site}?t={old}&load=0.7&sig={heartbeat.signature('k3y', beating_site, old, '0.7')}"
    assert client.get(stale).status_code == 403


@pytest.mark.parametrize("query", [
    "sig=" + "0" * 64,                                   # forged
    "t={t}&load=9.9&sig={sig}",                          # load altered after signing
])
def test_forged_heartbeats_are_refused(client, redis, beating_site, query):
    t = str(int(time.time()))
    sig = heartbeat.signature("k3y", beating_site, t, "0.1")
    assert client.get(f"/gateway/heartbeat/{beating_site}?" + query.format(t=t, sig=sig)).status_code == 403
    assert heartbeat.last_seen(redis, beating_site) == {}


def test_heartbeat_of_unknown_site_or_site_without_key_is_refused(app, client, redis):
    add_site(app, redis, site_id="BALI-NOKEY", vendor="mikrotik", gateway_id="hs-nokey")
    for site in ("BALI-NOKEY", "NO-SUCH-SITE"):
        assert client.get(f"/gateway/heartbeat/{site}?sig={heartbeat.signature('', site)}").status_code == 403


def test_stale_site_query_uses_the_index(redis):
    now = 1_800_000_000
    heartbeat.record(redis, province="51", site_id="A", load="0.1", via="signed", now=now - 7200)
    heartbeat.record(redis, province="51", site_id="B", load="0.2", via="wifidog", now=now - 60)
    heartbeat.record(redis, province="52", site_id="C", load="", via="signed", now=now - 7200)
    assert heartbeat.stale_sites(redis, province="51", older_than=3600, now=now) == ["A"]
    assert redis.type("portal:hb:{p:51}:seen") == b"zset"
