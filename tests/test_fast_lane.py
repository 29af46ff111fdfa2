"""Issue 14: the fast lane (portal/fast_lane.py) gives the app's own pages, counts once, and steps aside.

Every test runs two apps on one Redis and one secret: the lane on (the default) and off
(``FAST_LANE=False``, every request through Flask). The lane's pages must equal the app's byte
for byte and header for header, except the request id each response gets anew.
"""
from __future__ import annotations

import gzip
import re
import threading

import pytest
from werkzeug.middleware.proxy_fix import ProxyFix

from portal import create_app, events, limits, sessions
from portal.complaints import service, store
from portal.redis import is_cluster
from portal.tracking import normalize
from portal.sites import import_sites, parse_csv
from tests.conftest import MIKROTIK_ARRIVAL, SITES_CSV, Resident, client_for_url, make_config, tracking_number

FB = re.compile(r'name="fb" value="([^"]+)"')


class Counted:
    """Wraps the app behind the lane: which requests the lane handed on."""

    def __init__(self, inner):
        self.inner, self.paths = inner, []

    def __call__(self, environ, start_response):
        self.paths.append(environ["PATH_INFO"])
        return self.inner(environ, start_response)


def _pair(redis_url, tmp_path, **overrides):
    config = make_config(redis_url, tmp_path / "lane", **overrides)
    lane_app = create_app(dict(config))
    flask_app = create_app(dict(config, FAST_LANE=False, VAR_DIR=str(tmp_path / "flask")))
    import_sites(client_for_url(redis_url), parse_csv(SITES_CSV))
    lane = _lane(lane_app)
    behind = lane.inner = Counted(lane.inner)
    return lane_app, flask_app, behind


def _lane(app):
    """The app's lane, inside the ProxyFix that wraps it behind a proxy."""
    wrapped = app.wsgi_app
    return wrapped.app if isinstance(wrapped, ProxyFix) else wrapped


@pytest.fixture
def apps(redis, redis_server, tmp_path):
    """(the app with its lane, the same app without, the app behind the lane's hand-ons)."""
    return _pair(redis_server.url, tmp_path)


def _comparable(response):
    """Status, headers (no request id) and body of *response*."""
    heads = [(name, value) for name, value in response.headers if name != "X-Request-Id"]
    return response.status_code, heads, response.get_data()


def _lane_answered(lane_app, behind, path_count_before):
    """True if the lane answered the last request (the app behind it saw nothing new)."""
    lane = _lane(lane_app)
    if is_cluster(lane.client):  # a cluster client's keys live on several nodes: the lane stands aside
        assert lane.enabled is False
        return True
    return len(behind.paths) == path_count_before


@pytest.mark.parametrize("encoding", ["", "gzip, deflate"])
def test_the_landing_again_is_the_apps_page_byte_for_byte(apps, encoding):
    lane_app, flask_app, behind = apps
    resident = Resident(lane_app.test_client())
    resident.arrive()  # the app renders the campaign once and keeps it
    heads = {"Accept-Encoding": encoding} if encoding else {}
    before = len(behind.paths)
    fast = lane_app.test_client().get(f"/p/{resident.token}", headers=heads)
    assert _lane_answered(lane_app, behind, before)
    slow = flask_app.test_client().get(f"/p/{resident.token}", headers=heads)
    assert fast.status_code == 200
    assert _comparable(fast) == _comparable(slow)
    assert fast.headers["X-Request-Id"] != slow.headers["X-Request-Id"]
    assert fast.headers["Cache-Control"] == "no-store"
    body = gzip.decompress(fast.get_data()) if encoding else fast.get_data()
    assert (fast.headers.get("Content-Encoding") == "gzip") == bool(encoding)
    text = body.decode()
    assert f"/p/{resident.token}/connect" in text and "Baler Bale Agung" in text
    assert "0page0mark0" not in text  # every mark filled in


def test_the_status_page_is_the_apps_page_in_each_language(apps):
    lane_app, flask_app, behind = apps
    resident = Resident(lane_app.test_client())
    resident.arrive()
    number = tracking_number(resident.submit().get_data(as_text=True))
    for query, heads in (("", {}), ("?lang=en", {}), ("", {"Accept-Language": "en-US,en;q=0.8"}), ("?lang=ban", {})):
        lane_app.test_client().get(f"/status/{number}{query}", headers=heads)  # a miss renders it once
        before = len(behind.paths)
        fast = lane_app.test_client().get(f"/status/{number}{query}", headers=heads)
        assert _lane_answered(lane_app, behind, before), query
        slow = flask_app.test_client().get(f"/status/{number}{query}", headers=heads)
        assert fast.status_code == 200
        assert _comparable(fast) == _comparable(slow), (query, heads)
        assert number in fast.get_data(as_text=True)
    assert 'lang="en"' in lane_app.test_client().get(f"/status/{number}?lang=en").get_data(as_text=True)


STAMP = re.compile(r'name="started" value="([^"]+)"')


def _without_stamp(response):
    """Status, headers (no request id, no length) and body of a form *response*, its stamp taken out."""
    heads = [(name, value) for name, value in response.headers if name not in ("X-Request-Id", "Content-Length")]
    return response.status_code, heads, STAMP.sub("", response.get_data(as_text=True))


def test_the_blank_form_is_the_apps_form_with_a_stamp_of_its_own(apps, redis):
    lane_app, flask_app, behind = apps
    resident = Resident(lane_app.test_client())
    resident.arrive()
    resident.client.get(f"/p/{resident.token}/lapor")  # the app renders the blank form once
    before = len(behind.paths)
    fast = resident.client.get(f"/p/{resident.token}/lapor")
    assert _lane_answered(lane_app, behind, before)
    slow = flask_app.test_client().get(f"/p/{resident.token}/lapor")
    assert fast.status_code == 200
    assert _without_stamp(fast) == _without_stamp(slow)
    stamps = [STAMP.search(page.get_data(as_text=True)).group(1) for page in (fast, slow)]
    with lane_app.app_context():
        assert stamps[0] != stamps[1] and all(service.read_form_stamp(stamp) for stamp in stamps)
    # The form the lane served is sent as the app's would be, and every opening was counted.
    receipt = resident.client.post(f"/p/{resident.token}/lapor", data=resident.complaint(started=stamps[0], fb=""))
    assert receipt.status_code == 200 and tracking_number(receipt.get_data(as_text=True))
    opened = [fields for _, fields in redis.xrange(events.EVENTS) if fields[b"kind"] == b"form"]
    assert len(opened) == 3
    assert len({tuple(sorted((k, v) for k, v in fields.items() if k != b"at")) for fields in opened}) == 1
    assert opened[0][b"desa"] and opened[0][b"site"] == b"BALI-0001"


def test_one_form_render_serves_every_site_each_with_its_own_place_escaped(apps, redis):
    lane_app, flask_app, _ = apps
    header, mikrotik = SITES_CSV.splitlines()[:2]
    rows = []
    for n in range(12):
        fields = mikrotik.split(",")
        fields[0], fields[8], fields[-1] = f"BALI-8{n:03d}", f'Desa "{n}" & <i>{n}</i>', f"hs-form-{n}"
        rows.append(",".join(fields))
    import_sites(redis, parse_csv("\n".join([header, *rows]) + "\n"))
    for n in range(12):
        resident = Resident(lane_app.test_client())
        resident.arrive(identity=f"hs-form-{n}", mac=f"70:8A:09:65:4C:{n:02X}")
        for app in (lane_app, lane_app, flask_app):  # a render, the lane, the app without it
            html = app.test_client().get(f"/p/{resident.token}/lapor").get_data(as_text=True)
            values = dict(re.findall(r'name="(desa|kecamatan|kabupaten)" [^>]*value="([^"]*)"', html))
            assert values == {"desa": f"Desa &#34;{n}&#34; &amp; &lt;i&gt;{n}&lt;/i&gt;", "kecamatan": "Negara",
                              "kabupaten": "Kabupaten Jembrana"}, html
            assert "0page0mark0" not in html and f"<i>{n}</i>" not in html
    assert len([key for key in lane_app.extensions["portal_page_cache"] if key[0] == "form"]) == 1


@pytest.mark.parametrize("hinted", [True, False], ids=["site-known-one-trip", "site-unknown-two-trips"])
def test_the_sites_request_limit_is_counted_once_on_the_form(apps, redis, hinted):
    lane_app, _, behind = apps
    lane_app.config["SITE_REQUEST_LIMIT"] = 5
    resident = Resident(lane_app.test_client())
    resident.arrive()
    subject = limits.keyed_pseudonym(b"test-device-key", "site", "BALI-0001")
    site_key = limits.KEY.format(prov="51", scope="site", subject=subject)
    codes = []
    for n in range(6):
        if not hinted:
            sessions.SITE_HINTS.clear()  # as if the arrival had been served by another worker
        if n == 3:
            redis.script_flush()  # as after a Redis restart: the scripts are loaded again
        codes.append(resident.client.get(f"/p/{resident.token}/lapor").status_code)
        assert int(redis.get(site_key)) == n + 1  # every request counted once, whoever counted it
    assert codes == [200, 200, 200, 200, 200, 429]
    before = len(behind.paths)
    lane_app.config["SITE_REQUEST_LIMIT"] = 50
    assert resident.client.get(f"/p/{resident.token}/lapor").status_code == 200
    assert _lane_answered(lane_app, behind, before)


def test_two_visitors_at_once_each_get_only_their_own_page(apps):
    lane_app, _, _ = apps
    known, unknown = Resident(lane_app.test_client()), Resident(lane_app.test_client())
    known.arrive()
    unknown.arrive(mac="70:8A:09:65:4D:ED", ip="10.5.50.252", identity="hs-not-registered")
    assert known.token and unknown.token and known.token != unknown.token
    wrong = []

    def visit(me, other, place_shown):
        client = lane_app.test_client()
        for _ in range(40):
            text = client.get(f"/p/{me.token}").get_data(as_text=True)
            if (me.token not in text or other.token in text or ("Baler Bale Agung" in text) != place_shown
                    or len(set(FB.findall(text))) != 1):
                wrong.append(me.token)

    threads = [threading.Thread(target=visit, args=(known, unknown, True)),
               threading.Thread(target=visit, args=(unknown, known, False))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def _count(redis, scope, address):
    subject = limits.keyed_pseudonym(b"test-device-key", "client", address)
    value = redis.get(limits.KEY.format(prov="51", scope=scope, subject=subject))
    return int(value or 0)


def test_each_request_is_counted_once_and_the_limit_holds_with_the_apps_page(apps, redis):
    lane_app, flask_app, behind = apps
    lane_app.config["REQUEST_LIMIT"] = 4
    resident = Resident(lane_app.test_client())
    resident.arrive()  # 1
    for expected in (2, 3, 4):
        assert resident.client.get(f"/p/{resident.token}").status_code == 200
        assert _count(redis, "client", "127.0.0.1") == expected
    refused = resident.client.get(f"/p/{resident.token}", headers={"Accept-Language": "en"})
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
    assert "Very many requests came from your connection" in refused.get_data(as_text=True)
    assert _count(redis, "client", "127.0.0.1") == 5  # the refused one, once


def test_status_lookups_are_counted_once_against_their_own_limit(apps, redis):
    lane_app, _, _ = apps
    resident = Resident(lane_app.test_client())
    resident.arrive()
    number = tracking_number(resident.submit().get_data(as_text=True))
    lane_app.config["STATUS_LIMIT"] = 3
    for _ in range(3):
        assert resident.client.get(f"/status/{number}").status_code == 200
    assert _count(redis, "status", "127.0.0.1") == 3
    refused = resident.client.get(f"/status/{number}?lang=id")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "600"
    assert _count(redis, "status", "127.0.0.1") == 4


def test_what_the_lane_does_not_know_goes_to_the_app(apps, redis):
    lane_app, flask_app, behind = apps
    resident = Resident(lane_app.test_client())
    resident.arrive()
    client = lane_app.test_client()
    # A language change writes the session: the app's; the next visit finds the new language here.
    before = len(behind.paths)
    assert 'lang="en"' in client.get(f"/p/{resident.token}?lang=en").get_data(as_text=True)
    assert behind.paths[before:] == [f"/p/{resident.token}"]
    client.get(f"/p/{resident.token}")  # the English render, made once by the app
    before = len(behind.paths)
    assert 'lang="en"' in client.get(f"/p/{resident.token}").get_data(as_text=True)
    assert _lane_answered(lane_app, behind, before)
    # An expired session, an argument the lane does not know, a mistyped number, odd paths.
    for path in (f"/p/{'x' * 43}", f"/p/{resident.token}?utm=1", "/status/not-a-number", "/status/..%2F",
                 f"/p/{resident.token}%00", "/p/", "/status/", f"/p/{'é' * 10}"):
        before = len(behind.paths)
        fast = client.get(path)
        slow = flask_app.test_client().get(path)
        assert fast.status_code == slow.status_code and fast.status_code < 500, path
        assert len(behind.paths) == before + 1, path
    assert client.get(f"/p/{'x' * 43}").status_code == 410


def test_a_head_request_goes_to_the_app(apps):
    lane_app, _, behind = apps
    resident = Resident(lane_app.test_client())
    resident.arrive()
    before = len(behind.paths)
    assert resident.client.head(f"/p/{resident.token}").status_code == 200
    assert len(behind.paths) == before + 1


def test_redis_down_the_app_answers_from_the_page_copy_and_a_restart_is_ridden_out(own_redis, tmp_path):
    lane_app, _, behind = _pair(own_redis.url, tmp_path)
    resident = Resident(lane_app.test_client())
    resident.arrive()
    page = resident.client.get(f"/p/{resident.token}").get_data(as_text=True)
    copy = FB.search(page).group(1)
    own_redis.stop(kill=True)
    own_redis.start()  # every kept connection is stale now; the session is on disk
    before = len(behind.paths)
    assert resident.client.get(f"/p/{resident.token}").status_code == 200
    assert len(behind.paths) == before  # one fresh connection, no hand-on
    own_redis.stop()
    down = resident.client.get(f"/p/{resident.token}?fb={copy}")
    assert down.status_code == 200 and f"/p/{resident.token}/connect" in down.get_data(as_text=True)
    assert behind.paths[-1] == f"/p/{resident.token}"


def test_behind_a_proxy_the_lane_counts_the_forwarded_address(redis, redis_server, tmp_path):
    lane_app, _, behind = _pair(redis_server.url, tmp_path, PROXY_COUNT=1, REQUEST_LIMIT=100)  # counted one by one
    forwarded = {"X-Forwarded-For": "203.0.113.7"}
    client = lane_app.test_client()
    response = client.post("/hotspot/mikrotik", data=MIKROTIK_ARRIVAL, headers=forwarded)
    token = re.search(r'/p/([A-Za-z0-9_\-.=]+)/connect', response.get_data(as_text=True)).group(1)
    before = len(behind.paths)
    assert client.get(f"/p/{token}", headers=forwarded).status_code == 200
    assert _lane_answered(lane_app, behind, before)
    assert _count(redis, "client", "203.0.113.7") == 2
    assert _count(redis, "client", "127.0.0.1") == 0


def test_the_lane_can_be_turned_off(redis, redis_server, tmp_path):
    app = create_app(make_config(redis_server.url, tmp_path / "var", FAST_LANE=False))
    assert _lane(app).enabled is False
    resident = Resident(app.test_client())
    resident.arrive()
    assert resident.client.get(f"/p/{resident.token}").status_code == 200  # the app answers


def test_a_primary_turned_replica_sends_the_lane_to_a_new_connection(own_redis, tmp_path):
    # Counted one by one, so the request after the demotion writes (its count) and is refused.
    lane_app, _, behind = _pair(own_redis.url, tmp_path, REQUEST_LIMIT=100)
    lane = _lane(lane_app)
    resident = Resident(lane_app.test_client())
    resident.arrive()
    copy = FB.search(resident.client.get(f"/p/{resident.token}").get_data(as_text=True)).group(1)
    server = client_for_url(own_redis.url)
    server.replicaof("127.0.0.1", "9")  # read-only now, as a demoted primary after a failover
    try:
        before = len(behind.paths)
        answer = resident.client.get(f"/p/{resident.token}?fb={copy}")
        assert answer.status_code == 200 and len(behind.paths) == before + 1  # the app's fail-open page
        assert lane.local.connection is None  # dropped: the next request connects afresh
        assert lane.cache.entries == {} and lane.cache.listener is None  # and the copies with it
    finally:
        server.replicaof("NO", "ONE")
    before = len(behind.paths)
    assert resident.client.get(f"/p/{resident.token}").status_code == 200
    assert len(behind.paths) == before and lane.local.connection is not None


def _calls(redis, *commands):
    stats = redis.info("commandstats")
    return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in commands)


def test_repeat_visits_are_answered_from_the_workers_copies_without_redis(own_redis, tmp_path):
    # This and the next tests run on a single Redis of their own: on a Cluster the lane stands aside.
    redis = client_for_url(own_redis.url)
    lane_app, _, behind = _pair(own_redis.url, tmp_path)
    resident = Resident(lane_app.test_client())
    resident.arrive()
    for _ in range(2):  # the app renders the page once, then the lane reads the session (and leases 9 hits)
        resident.client.get(f"/p/{resident.token}")
    lane = _lane(lane_app)
    packets = []
    sent = lane.round_trip
    lane.round_trip = lambda packet: packets.append(packet) or sent(packet)
    before, scripts = len(behind.paths), _calls(redis, "evalsha", "eval", "hgetall")
    for _ in range(7):
        assert resident.client.get(f"/p/{resident.token}").status_code == 200
    assert _lane_answered(lane_app, behind, before)
    assert packets == [] and _calls(redis, "evalsha", "eval", "hgetall") == scripts  # not one command
    assert _count(redis, "client", "127.0.0.1") == 1 + 9  # the arrival, then one lease of 9: 2 + 7 visits


def test_a_change_made_through_another_worker_is_seen_at_once(own_redis, tmp_path):
    redis = client_for_url(own_redis.url)
    one, _, behind = _pair(own_redis.url, tmp_path / "one")
    other = create_app(make_config(own_redis.url, tmp_path / "other"))
    resident = Resident(one.test_client())
    resident.arrive()
    number = tracking_number(resident.submit().get_data(as_text=True))
    for _ in range(2):  # renders made, copies kept
        assert 'lang="id"' in one.test_client().get(f"/p/{resident.token}").get_data(as_text=True)
        one.test_client().get(f"/status/{number}")
    # Another worker switches the language (a session write), then staff reject the complaint.
    assert 'lang="en"' in other.test_client().get(f"/p/{resident.token}?lang=en").get_data(as_text=True)
    assert 'lang="en"' in one.test_client().get(f"/p/{resident.token}").get_data(as_text=True)
    before = len(behind.paths)
    assert 'lang="en"' in one.test_client().get(f"/p/{resident.token}").get_data(as_text=True)
    assert _lane_answered(one, behind, before)
    record = store.record_key("51", normalize(number))
    page = one.test_client().get(f"/status/{number}").get_data(as_text=True)
    redis.hset(record, "status", "rejected")
    changed = one.test_client().get(f"/status/{number}").get_data(as_text=True)
    assert changed != page and changed == other.test_client().get(f"/status/{number}").get_data(as_text=True)
    # An expired or erased session is gone from the copies too.
    with one.app_context():
        key = sessions.token_keys(b"test-secret", resident.token)[0]
    redis.delete(key)
    assert one.test_client().get(f"/p/{resident.token}").status_code == 410


def test_leases_across_two_workers_never_let_more_than_the_limit_through(own_redis, tmp_path):
    redis = client_for_url(own_redis.url)
    one, _, _ = _pair(own_redis.url, tmp_path / "one", REQUEST_LIMIT=256)  # leases of 4
    two, _, _ = _pair(own_redis.url, tmp_path / "two", REQUEST_LIMIT=256)
    resident = Resident(one.test_client())
    resident.arrive()  # 1
    codes = []

    def visit(app):
        client = app.test_client()
        for _ in range(150):
            codes.append(client.get(f"/p/{resident.token}").status_code)

    threads = [threading.Thread(target=visit, args=(app,)) for app in (one, two, one, two)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    served = codes.count(200)
    assert served + codes.count(429) == 600
    # At most the limit (less the arrival), at most a lease less per worker than it.
    assert 255 - 2 * 3 <= served <= 255
    assert _count(redis, "client", "127.0.0.1") >= served + 1
