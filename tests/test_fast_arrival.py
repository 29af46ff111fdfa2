"""Issue 14: arrival and connect in the fast lane (portal/fast_arrival.py, portal/fast_connect.py).

As in tests/test_fast_lane.py, two apps share one Redis and one secret, the lane on and off; the
lane's landing must be the app's byte for byte once each page's own session (its token and its
copy) is set aside, its 303 to the router the app's, and its sessions, counts and campaign choice
the ones the app makes.
"""
from __future__ import annotations

import gzip
from urllib.parse import urlencode

import pytest

from portal import events, sessions
from portal.campaigns.model import blank
from portal.campaigns import store as campaign_store
from portal.redis import is_cluster
from tests.conftest import MIKROTIK_ARRIVAL, TOKEN, Resident
from tests.test_fast_lane import FB, _comparable, _count, _lane, _lane_answered, _pair


@pytest.fixture
def apps(redis, redis_server, tmp_path):
    """(the app with its lane, the same app without, the app behind the lane's hand-ons)."""
    return _pair(redis_server.url, tmp_path)


def _own_values_out(response, encoding: str):
    """Status, headers (no request id, no length) and body of a landing, its token and session copy set aside."""
    body = response.get_data()
    text = (gzip.decompress(body) if encoding else body).decode()
    token = TOKEN.search(text).group(1)
    copy = FB.search(text).group(1)
    text = text.replace(token, "TOKEN").replace(copy, "COPY")
    heads = [(name, value) for name, value in response.headers if name not in ("X-Request-Id", "Content-Length")]
    return response.status_code, heads, text


def _impressions(redis) -> int:
    return sum(1 for _, fields in redis.xrange(events.EVENTS) if fields[b"kind"] == b"impression")


@pytest.mark.parametrize("encoding", ["", "gzip, deflate"])
def test_an_arrival_is_the_apps_landing_with_a_session_of_its_own(apps, redis, encoding):
    lane_app, flask_app, behind = apps
    heads = {"Accept-Encoding": encoding} if encoding else {}

    def arrive(app):
        return app.test_client().post("/hotspot/mikrotik", data=MIKROTIK_ARRIVAL, headers=heads)

    arrive(lane_app)  # the app renders the campaign once
    before = len(behind.paths)
    fast = arrive(lane_app)
    assert _lane_answered(lane_app, behind, before)
    slow = arrive(flask_app)
    assert fast.status_code == 200
    assert _own_values_out(fast, encoding) == _own_values_out(slow, encoding)
    assert (fast.headers.get("Content-Encoding") == "gzip") == bool(encoding)
    text = (gzip.decompress(fast.get_data()) if encoding else fast.get_data()).decode()
    assert "0page0mark0" not in text
    token = TOKEN.search(text).group(1)
    # The session the lane stored is the app's: the app without the lane shows it and grants it.
    again = flask_app.test_client().get(f"/p/{token}")
    assert again.status_code == 200 and f"/p/{token}/connect" in again.get_data(as_text=True)
    with flask_app.app_context():
        session = sessions.load(token)
    assert (session.site_id, session.arrival.client_mac, session.lang) == ("BALI-0001", "70:8A:09:65:4D:EC", "id")
    granted = flask_app.test_client().post(f"/p/{token}/connect")
    assert granted.status_code == 303 and granted.headers["Location"].startswith("http://10.5.50.1/login")
    assert _impressions(redis) == 3  # each arrival counted once, whoever answered it


def test_a_get_arrival_in_english_is_answered_too(apps):
    lane_app, flask_app, behind = apps
    query = urlencode(dict(MIKROTIK_ARRIVAL, lang="en"))
    lane_app.test_client().get(f"/hotspot/mikrotik?{query}")
    before = len(behind.paths)
    fast = lane_app.test_client().get(f"/hotspot/mikrotik?{query}")
    assert _lane_answered(lane_app, behind, before)
    slow = flask_app.test_client().get(f"/hotspot/mikrotik?{query}")
    assert _own_values_out(fast, "") == _own_values_out(slow, "")
    assert 'lang="en"' in fast.get_data(as_text=True) and "You are at" in fast.get_data(as_text=True)


def test_a_capped_campaign_chosen_by_the_lane_and_handed_on_is_counted_once(apps, redis):
    lane_app, _, behind = apps
    campaign = blank("51")
    campaign.update(id="capped", name="capped", author="a", cap=2, priority=9)
    campaign["targeting"]["regions"] = ["51.01"]
    for lang in ("id", "en", "ban"):
        campaign["content"]["A"][lang].update(headline=f"Capped {lang}", body="a")
        campaign["content"]["B"][lang].update(headline=f"Capped {lang}", body="b")
    campaign_store.publish(redis, "51", campaign, by="r", reviewed_by="r")
    shown, answered = [], []
    for _ in range(3):
        before = len(behind.paths)
        shown.append("Capped id" in Resident(lane_app.test_client()).arrive().get_data(as_text=True))
        answered.append(len(behind.paths) == before)
    # The first arrival is handed on (no render yet) after the lane chose, and counted, the campaign;
    # had the app chosen again, the cap of 2 would be reached by the second arrival.
    if is_cluster(_lane(lane_app).client):
        assert answered == [False, False, False]  # the lane stands aside on a cluster: the app alone
    else:
        assert answered[:2] == [False, True]
    assert shown == [True, True, False]


def test_the_client_limit_counts_each_arrival_once_and_the_app_refuses(apps, redis):
    lane_app, _, _ = apps
    lane_app.config["REQUEST_LIMIT"] = 3
    codes = [Resident(lane_app.test_client()).arrive().status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert _count(redis, "client", "127.0.0.1") == 4


@pytest.mark.parametrize("case", ["signed vendor", "unknown vendor", "unregistered gateway", "multipart", "not utf-8",
                                  "json", "unknown length", "large"])
def test_what_the_lane_does_not_take_goes_to_the_app_unchanged(apps, case):
    lane_app, flask_app, behind = apps
    Resident(lane_app.test_client()).arrive()  # the render is cached: only the case itself sends it on
    path, fields = "/hotspot/mikrotik", dict(MIKROTIK_ARRIVAL)
    kwargs: dict = {}
    if case == "signed vendor":
        path = "/hotspot/opennds"
    elif case == "unknown vendor":
        path = "/hotspot/nope"
    elif case == "unregistered gateway":
        fields["identity"] = "hs-not-registered"
    if case == "multipart":
        kwargs = {"data": fields, "content_type": "multipart/form-data"}
    elif case == "not utf-8":
        kwargs = {"data": urlencode(fields).encode() + b"&x=\xff\xfe",
                  "content_type": "application/x-www-form-urlencoded"}
    elif case == "json":
        kwargs = {"json": fields}
    elif case == "unknown length":
        # As gunicorn hands on a chunked body: no Content-Length.
        kwargs = {"data": urlencode(fields), "content_type": "application/x-www-form-urlencoded",
                  "environ_overrides": {"CONTENT_LENGTH": ""}}
    elif case == "large":
        kwargs = {"data": dict(fields, pad="x" * 20_000)}
    else:
        kwargs = {"data": fields}
    before = len(behind.paths)
    fast = lane_app.test_client().post(path, **kwargs)
    slow = flask_app.test_client().post(path, **kwargs)
    assert behind.paths[before:] == [path], case
    assert fast.status_code == slow.status_code and fast.status_code < 500, case
    if case == "multipart":  # the app read the body the lane put back: the resident is served
        assert fast.status_code == 200 and TOKEN.search(fast.get_data(as_text=True))


def test_a_redis_gone_mid_arrival_gets_the_apps_fail_open_page(own_redis, tmp_path):
    lane_app, _, behind = _pair(own_redis.url, tmp_path)
    Resident(lane_app.test_client()).arrive()
    own_redis.stop()  # the breaker is still closed: the lane tries, fails and hands on
    before = len(behind.paths)
    resident = Resident(lane_app.test_client())
    page = resident.arrive()
    assert behind.paths[before:] == ["/hotspot/mikrotik"]
    assert page.status_code == 200 and resident.token.startswith(sessions.FALLBACK_PREFIX)
    assert resident.client.post(f"/p/{resident.token}/connect").status_code == 303


def test_two_residents_arriving_and_connecting_at_once_each_get_only_their_own(apps):
    import threading

    lane_app, _, _ = apps
    Resident(lane_app.test_client()).arrive()
    macs = [f"70:8A:09:65:4E:{n:02X}" for n in range(2)]
    seen: dict[str, list] = {mac: [] for mac in macs}
    wrong: list[str] = []

    def arrive(mac):
        for _ in range(25):
            resident = Resident(lane_app.test_client())
            text = resident.arrive(mac=mac).get_data(as_text=True)
            with lane_app.app_context():
                session = sessions.load(resident.token)
            if session is None or session.arrival.client_mac != mac or text.count(resident.token) < 2:
                wrong.append(mac)
            granted = resident.client.post(f"/p/{resident.token}/connect", data={"lang": "id"})
            login = granted.headers.get("Location", "")
            if f"username=T-{mac.replace(':', '%3A')}&" not in login:
                wrong.append(login)
            seen[mac].append(resident.token)

    threads = [threading.Thread(target=arrive, args=(mac,)) for mac in macs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not wrong
    tokens = seen[macs[0]] + seen[macs[1]]
    assert len(set(tokens)) == 50


# --- connect ---------------------------------------------------------------------------------


def _grants(redis) -> int:
    return sum(1 for _, fields in redis.xrange(events.EVENTS) if fields[b"kind"] == b"grant")


@pytest.mark.parametrize("copy", [False, True], ids=["session-read", "workers-copy"])
def test_connect_is_the_apps_303_and_marks_the_session_granted(apps, redis, copy):
    lane_app, flask_app, behind = apps
    resident = Resident(lane_app.test_client())
    resident.arrive()
    landing = resident.client.get(f"/p/{resident.token}").get_data(as_text=True)
    fields = {"lang": "id", "fb": FB.search(landing).group(1)}
    if not copy:
        _lane(lane_app).cache.reset()  # as if another worker had shown the landing
    before = len(behind.paths)
    fast = resident.client.post(f"/p/{resident.token}/connect", data=fields)
    assert _lane_answered(lane_app, behind, before)
    slow = flask_app.test_client().post(f"/p/{resident.token}/connect", data=fields)
    assert fast.status_code == 303
    assert _comparable(fast) == _comparable(slow)
    assert fast.headers["Location"] == "http://10.5.50.1/login?username=T-70%3A8A%3A09%3A65%3A4D%3AEC&dst=http%3A%2F%2Fexample.com%2F"
    with flask_app.app_context():
        session = sessions.load(resident.token)
    assert session.granted > 0 and session.minutes == 120 and session.arrival.client_mac == "70:8A:09:65:4D:EC"
    assert _grants(redis) == 2  # the lane's and the app's, each once
    # The granted session is what the captive API reports, whichever way it was granted.
    assert lane_app.test_client().get(f"/api/captive/{resident.token}").get_json()["captive"] is False


@pytest.mark.parametrize("case", ["login form", "radius", "language change", "unknown field", "expired",
                                  "session in the token"])
def test_a_connect_the_lane_does_not_take_goes_to_the_app(apps, redis, case):
    lane_app, flask_app, behind = apps
    resident = Resident(lane_app.test_client())
    chap = {"chap-id": "\\001", "chap-challenge": "\\357\\015\\201" * 5 + "\\001"} if case == "login form" else {}
    resident.arrive(data=dict(MIKROTIK_ARRIVAL, **chap))
    token, fields = resident.token, {"lang": "id"}
    if case == "login form":  # a shared hotspot account, CHAP: a form the browser posts to the router
        for app in (lane_app, flask_app):
            app.config.update(MIKROTIK_LOGIN_MODE="account", MIKROTIK_USERNAME="portal", MIKROTIK_PASSWORD="pw")
    elif case == "radius":
        lane_app.config["MIKROTIK_LOGIN_MODE"] = flask_app.config["MIKROTIK_LOGIN_MODE"] = "radius"
    elif case == "language change":
        fields["lang"] = "en"
    elif case == "unknown field":
        fields["next"] = "https://elsewhere.example/"
    elif case == "expired":
        token = "x" * 24
    elif case == "session in the token":
        token = sessions.FALLBACK_PREFIX + "abc"
    before = len(behind.paths)
    fast = lane_app.test_client().post(f"/p/{token}/connect", data=fields)
    assert behind.paths[before:] == [f"/p/{token}/connect"], case
    expected = {"login form": 200, "radius": 200, "language change": 303, "unknown field": 303, "expired": 410,
                "session in the token": 410}
    assert fast.status_code == expected[case]
    if case == "login form":
        assert 'action="http://10.5.50.1/login"' in fast.get_data(as_text=True)
    assert _grants(redis) == (1 if fast.status_code in (200, 303) else 0)


def test_a_redis_gone_mid_connect_grants_from_the_page_copy(own_redis, tmp_path):
    lane_app, _, behind = _pair(own_redis.url, tmp_path)
    resident = Resident(lane_app.test_client())
    resident.arrive()
    copy = FB.search(resident.client.get(f"/p/{resident.token}").get_data(as_text=True)).group(1)
    own_redis.stop()  # the worker still holds the session's copy; the write cannot be made
    before = len(behind.paths)
    granted = resident.client.post(f"/p/{resident.token}/connect", data={"lang": "id", "fb": copy})
    assert behind.paths[before:] == [f"/p/{resident.token}/connect"]
    assert granted.status_code == 303 and granted.headers["Location"].startswith("http://10.5.50.1/login?username=T-")
