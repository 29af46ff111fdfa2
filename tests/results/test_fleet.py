"""Fleet health: site states, the alert state machine with hold-down, webhook and e-mail on loopback."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from portal import events, heartbeat
from portal.results import alerts, fleet
from tests.delivery.standins import SMTPStandIn

SECRET = "alert-secret-for-tests"


class HookReceiver:
    """A real HTTP server on 127.0.0.1 that keeps every POST (headers and body)."""

    def __init__(self):
        self.posts: list[tuple[dict, bytes]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.posts.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_state_of():
    assert fleet.state_of(None, 1000, stale=60, offline=300) == "offline"
    assert fleet.state_of(990, 1000, stale=60, offline=300) == "online"
    assert fleet.state_of(900, 1000, stale=60, offline=300) == "stale"
    assert fleet.state_of(600, 1000, stale=60, offline=300) == "offline"


def test_hold_down_suppresses_flapping():
    hold = 600
    state, fire = alerts.step(None, "up", 0, hold)
    assert not fire and state["state"] == "up"          # first sight: no alert
    # Flapping: down, up, down, up, each shorter than the hold-down: nothing is sent.
    for t, observed in ((100, "down"), (400, "up"), (500, "down"), (900, "up"), (1000, "down")):
        state, fire = alerts.step(state, observed, t, hold)
        assert not fire
    assert state["state"] == "up" and state["pending"] == "down" and state["pending_since"] == 1000
    state, fire = alerts.step(state, "down", 1500, hold)
    assert not fire                                       # 500 s down: not yet
    state, fire = alerts.step(state, "down", 1600, hold)
    assert fire and state == {"state": "down", "since": 1000, "pending": None, "pending_since": None}
    state, fire = alerts.step(state, "down", 5000, hold)
    assert not fire                                       # stays down: one alert only
    state, fire = alerts.step(state, "up", 6000, hold)
    assert not fire
    state, fire = alerts.step(state, "up", 6600, hold)
    assert fire and state["state"] == "up" and state["since"] == 6000


@pytest.fixture
def alerting(app):
    hook, smtp = HookReceiver(), SMTPStandIn().start()
    app.config.update(ALERT_WEBHOOK_URL=hook.url, ALERT_WEBHOOK_SECRET=SECRET, ALERT_EMAIL_TO="noc@example.test",
                      ALERT_SMTP_HOST="127.0.0.1", ALERT_SMTP_PORT=smtp.port, FLEET_HOLD_DOWN_SECONDS=0,
                      FLEET_STALE_SECONDS=600, FLEET_OFFLINE_SECONDS=1800)
    yield hook, smtp
    hook.stop()
    smtp.stop()


def run_check(runner) -> dict:
    result = runner.invoke(args=["results", "fleet-check"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_fleet_check_alerts_down_and_back_by_signed_webhook_and_email(app, runner, redis, alerting):
    hook, smtp = alerting
    now = time.time()
    heartbeat.record(redis, province="51", site_id="BALI-0001", now=now)
    heartbeat.record(redis, province="51", site_id="BALI-0003", now=now)
    assert run_check(runner)["alerts"] == 0              # first run learns the states
    heartbeat.record(redis, province="51", site_id="BALI-0003", now=now - 7200)
    report = run_check(runner)
    assert report["offline"] == 1 and report["alerts"] == 1 and report["webhook"] == 1 and report["email"] == 1
    headers, body = hook.posts[0]
    assert headers["X-Portal-Signature"] == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    alert = json.loads(body)
    assert alert["site_id"] == "BALI-0003" and alert["state"] == "offline"
    assert "BALI-0003" in smtp.messages[0]["Subject"] and "OFFLINE" in smtp.messages[0]["Subject"]
    assert smtp.envelopes[0][1] == ["<noc@example.test>"]
    assert run_check(runner)["alerts"] == 0              # still down: no repeat
    heartbeat.record(redis, province="51", site_id="BALI-0003", now=time.time())
    assert run_check(runner)["alerts"] == 1
    assert json.loads(hook.posts[1][1])["state"] == "online" and "ONLINE" in smtp.messages[1]["Subject"]


def test_fleet_check_holds_down_a_short_outage(app, runner, redis, alerting):
    hook, smtp = alerting
    app.config["FLEET_HOLD_DOWN_SECONDS"] = 3600
    heartbeat.record(redis, province="51", site_id="BALI-0001", now=time.time())
    run_check(runner)
    heartbeat.record(redis, province="51", site_id="BALI-0001", now=time.time() - 7200)
    assert run_check(runner)["alerts"] == 0              # down, but not for an hour yet
    heartbeat.record(redis, province="51", site_id="BALI-0001", now=time.time())
    assert run_check(runner)["alerts"] == 0 and hook.posts == [] and smtp.messages == []


def test_fleet_page_is_scoped_and_shows_last_resident_and_grant(app, client, redis, resident, as_staff):
    heartbeat.record(redis, province="51", site_id="BALI-0001", now=time.time() - 60)
    resident.arrive()
    resident.connect()
    with app.app_context():
        events.replay_event(redis, events.make_event("grant", site_id="x", campaign="", lang="id", device="d"))
        events.count_grant(redis, "51", "omada", "failed")
    as_staff("operator", "51")
    html = client.get("/studio/fleet/").get_data(as_text=True)
    assert "BALI-0001" in html and "BALI-0003" in html
    assert "1 online" in html and "1 offline" in html
    assert "0 min" in html                                 # last resident and grant just now
    assert "mikrotik" in html and "omada" in html and "100.0 %" in html  # failure rates by vendor
    as_staff("editor", "5101")                             # Jembrana: its own grants, not the unknown site's
    html = client.get("/studio/fleet/").get_data(as_text=True)
    vendors = html.split('id="vendors"')[1].split("</table>")[0]
    assert "mikrotik" in vendors and "omada" not in vendors
    as_staff("editor", "5171")                             # Denpasar has none of these sites
    html = client.get("/studio/fleet/").get_data(as_text=True)
    assert "BALI-0001" not in html and "0 sites" in html and 'id="vendors"' not in html
    data = client.get("/studio/fleet/sites.json").get_json()
    assert data == {"sites": []}
    assert client.get("/studio/fleet/?state=bogus").status_code == 400


def test_an_alert_a_channel_refused_is_sent_by_the_next_check(app, runner, redis, alerting):
    hook, smtp = alerting
    heartbeat.record(redis, province="51", site_id="BALI-0001", now=time.time())
    run_check(runner)
    heartbeat.record(redis, province="51", site_id="BALI-0001", now=time.time() - 7200)
    hook.stop()  # the receiver is down
    report = run_check(runner)
    assert report["alerts"] == 1 and report["failed"] == 1 and report["waiting"] == 1 and report["email"] == 1
    again = HookReceiver()
    app.config["ALERT_WEBHOOK_URL"] = again.url
    try:
        report = run_check(runner)
        assert report["alerts"] == 0 and report["retried"] == 1 and report["waiting"] == 0
        assert json.loads(again.posts[0][1])["site_id"] == "BALI-0001"
        assert run_check(runner)["retried"] == 0
    finally:
        again.stop()
        hook.stop = lambda: None  # already stopped; the fixture's teardown calls it again


def test_a_failed_grant_is_counted_for_its_vendor_and_kabupaten(app, client, redis, resident, as_staff, monkeypatch):
    from hotspot_hooks import ControllerRejectedError
    from hotspot_hooks.mikrotik import MikrotikHook

    from portal.results import ops

    def refuse(self, arrival, settings):
        raise ControllerRejectedError("router said no")

    before = ops.GRANT_FAILURES.labels("mikrotik", "failed")._value.get()
    monkeypatch.setattr(MikrotikHook, "authorize", refuse)
    resident.arrive()
    assert resident.connect().status_code == 502
    assert ops.GRANT_FAILURES.labels("mikrotik", "failed")._value.get() == before + 1
    day = time.strftime("%Y%m%d", time.gmtime(time.time() + events.WITA))
    assert redis.hget(events.KAB_GRANTS.format(kab="5101", day=day), "mikrotik|failed") == b"1"
    as_staff("editor", "5101")
    vendors = client.get("/studio/fleet/").get_data(as_text=True).split('id="vendors"')[1].split("</table>")[0]
    assert "100.0 %" in vendors
