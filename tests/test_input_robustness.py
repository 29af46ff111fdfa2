"""Junk thrown at every route: a resident (or a scanner) always gets a clear page, never a 5xx."""
from __future__ import annotations

import json

import pytest

from portal import heartbeat
from portal.delivery import signing
from tests.conftest import MIKROTIK_ARRIVAL
from tests.hotspot_hooks.helpers import add_site

CALLBACK_SECRET = "robustness-callback-secret"

HUGE = "A" * 100_000
BAD_UTF8 = b"\xff\xfe\xc3\x28 \xed\xa0\x80"
JUNK_QUERIES = [
    "", "lang=xx", "lang=" + HUGE[:5000], "lang=%ff%fe", "%ff=%ff", "x=" + HUGE,
    # url_for keywords and view-argument names, echoed into the language links
    "_method=POST", "_external=&_scheme=javascript", "_anchor=%0aalert(1)", "token=x&number=1&vendor=y",
    "tn=%00%0d%0a", "tn=" + "Z" * 3000, "back=%ff", "back=" + "x." + "A" * 5000, "fb=%ff", "fb=" + HUGE[:5000],
    "session=%ff", "n=-1", "n=999999999999999999999", "n=abc", "gw_id=%00", "token=%ff&mac=zz&gw_id=a",
    "stage=logout&token=" + "t" * 300, "t=%ff&sig=%ff%fe&load=nan", "t=1&sig=\u00e9\u00e9", "sig=" + HUGE[:3000],
]
ROUTES = [
    ("GET", "/"), ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/favicon.ico"),
    ("GET", "/privacy"), ("GET", "/status"), ("GET", "/status/ABCD-EFGH-J"), ("GET", "/status/%ff%fe"),
    ("GET", "/status/" + "A" * 3000), ("GET", "/api/captive"), ("GET", "/api/captive/%ff"),
    ("GET", "/hotspot/mikrotik"), ("POST", "/hotspot/mikrotik"), ("GET", "/hotspot/%ff"), ("POST", "/hotspot/nope"),
    ("GET", "/hotspot/opennds"), ("POST", "/hotspot/opennds"), ("GET", "/hotspot/coovachilli"),
    ("GET", "/hotspot/meraki"), ("GET", "/hotspot/wifidog"), ("POST", "/hotspot/pfsense"), ("GET", "/hotspot/omada"),
    ("GET", "/guest/s/default/"), ("GET", "/guest/s/%ff/"), ("POST", "/gateway/opennds/authmon"),
    ("GET", "/wifidog/login/"), ("GET", "/wifidog/auth/"), ("GET", "/wifidog/ping/"), ("GET", "/wifidog/portal/"),
    ("GET", "/gateway/heartbeat/BALI-0001"), ("GET", "/gateway/heartbeat/BALI-HB"), ("GET", "/gateway/heartbeat/%ff"),
    ("POST", "/callbacks/lapor"), ("GET", "/metrics"),
    ("POST", "/radius/authorize"), ("POST", "/radius/post-auth"), ("POST", "/radius/accounting"),
    ("GET", "/p/nosuchtoken"), ("GET", "/p/x.garbage/lapor"), ("POST", "/p/%ff/connect"), ("GET", "/p/x/wait"),
    ("GET", "/p/" + "A" * 5000),
]
SESSION_PATHS = [("GET", "/p/{t}"), ("GET", "/p/{t}/lapor"), ("POST", "/p/{t}/lapor"), ("POST", "/p/{t}/connect"),
                 ("GET", "/p/{t}/wait")]
BODIES = [
    {},
    {"data": {"x": HUGE[:50_000]}},
    {"data": BAD_UTF8, "content_type": "application/x-www-form-urlencoded"},
    {"data": b"a=" + BAD_UTF8 + b"&auth_get=view&gatewayhash=" + BAD_UTF8, "content_type": "application/x-www-form-urlencoded"},
    {"data": b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\n" + BAD_UTF8 + b"\r\n--b--\r\n",
     "content_type": "multipart/form-data; boundary=b"},
    {"data": b"--broken", "content_type": "multipart/form-data; boundary=b"},
    {"data": json.dumps([1, 2, 3]), "content_type": "application/json"},
    {"data": json.dumps({"tracking": ["x"], "status": {"a": 1}, "User-Name": {"value": {"x": 1}}}),
     "content_type": "application/json"},
    {"data": b"{not json", "content_type": "application/json"},
    {"data": {"body": ["a", "b"], "kind": "x" * 10_000, "started": "\x00", "consent": "y", "website": ""}},
]


@pytest.fixture
def app_config(app_config, monkeypatch):
    """Every machine endpoint switched on, so the junk reaches past the "not configured" answers."""
    monkeypatch.setenv("ROBUSTNESS_CALLBACK_SECRET", CALLBACK_SECRET)
    app_config.update(METRICS_TOKEN="metrics-token", RADIUS_API_TOKEN="radius-token",
                      DELIVERY_CONFIG={"callback": {"secret_env": "ROBUSTNESS_CALLBACK_SECRET"}, "channels": []})
    return app_config


@pytest.fixture(autouse=True)
def heartbeat_site(app, redis):
    add_site(app, redis, site_id="BALI-HB", vendor="mikrotik", gateway_id="hs-hb", secrets={"heartbeat_key": "k3y"})


def _assert_clear(response, what):
    assert response.status_code < 500, f"{what}: {response.status_code}"


@pytest.fixture
def token(resident):
    resident.arrive()
    assert resident.token
    return resident.token


@pytest.mark.parametrize("query", JUNK_QUERIES)
def test_junk_queries_never_give_a_5xx(client, token, query):
    for method, path in ROUTES + [(m, p.format(t=token)) for m, p in SESSION_PATHS]:
        response = client.open(path + ("?" + query if query else ""), method=method)
        _assert_clear(response, f"{method} {path}?{query[:60]}")


@pytest.mark.parametrize("body", range(len(BODIES)))
def test_junk_bodies_never_give_a_5xx(client, token, body):
    for method, path in ROUTES + [(m, p.format(t=token)) for m, p in SESSION_PATHS]:
        if method != "POST":
            continue
        response = client.open(path, method="POST", **BODIES[body])
        _assert_clear(response, f"POST {path} body {body}")


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
def test_unexpected_methods_get_a_clear_answer(client, token, method):
    for _, path in ROUTES + [(m, p.format(t=token)) for m, p in SESSION_PATHS]:
        _assert_clear(client.open(path, method=method), f"{method} {path}")


def test_junk_headers_never_give_a_5xx(client, token):
    junk = {"X-Portal-Timestamp": "\u0661\u0662", "X-Portal-Signature": "v1=\u00e9" * 3,
            "Authorization": "Bearer \u00e9\u00ff", "Accept-Language": "\u00e9;q=x," * 200,
            "Content-Type": "application/x-www-form-urlencoded; charset=nonsense"}
    for method, path in ROUTES + [(m, p.format(t=token)) for m, p in SESSION_PATHS]:
        _assert_clear(client.open(path, method=method, headers=junk, data=b"a=b"), f"{method} {path}")


def test_an_arrival_with_oversized_fields_gets_a_page(client):
    fields = {**MIKROTIK_ARRIVAL, **{k: HUGE[:20_000] for k in ("mac", "ip", "identity", "link-orig", "chap-id")}}
    _assert_clear(client.post("/hotspot/mikrotik", data=fields), "oversized arrival")


@pytest.mark.parametrize("body", range(len(BODIES)))
def test_authenticated_machine_calls_with_junk_bodies_get_a_4xx(client, body):
    """Past the token or signature check, a malformed body is the caller's error (4xx), not ours."""
    raw = BODIES[body].get("data", b"")
    raw = raw if isinstance(raw, bytes) else json.dumps(raw).encode() if not isinstance(raw, str) else raw.encode()
    content_type = BODIES[body].get("content_type", "application/json")
    signed = {**signing.sign(CALLBACK_SECRET, raw), "Content-Type": content_type}
    _assert_clear(client.post("/callbacks/lapor", data=raw, headers=signed), f"signed callback body {body}")
    for path in ("/radius/authorize", "/radius/post-auth", "/radius/accounting"):
        response = client.post(path, data=raw, headers={"Authorization": "Bearer radius-token",
                                                        "Content-Type": content_type})
        _assert_clear(response, f"{path} body {body}")


@pytest.mark.parametrize("sig", ["\u00e9" * 64, "zz", "", "A" * 64])
def test_heartbeat_signatures_of_any_shape_get_a_4xx(client, sig):
    for t in ("", str(int(__import__("time").time())), "\u0661\u0662"):
        response = client.get("/gateway/heartbeat/BALI-HB", query_string={"sig": sig, "t": t, "load": "1"})
        assert response.status_code in (403, 200)
    good = heartbeat.signature("k3y", "BALI-HB")
    assert client.get(f"/gateway/heartbeat/BALI-HB?sig={good}").status_code == 200


def test_a_huge_body_gets_the_too_long_page_unread(client, token, app):
    assert app.config["MAX_CONTENT_LENGTH"] == 64 * 1024
    body = {"body": "x" * 70_000, "consent": "y"}
    for path in (f"/p/{token}/lapor", f"/p/{token}/connect", "/hotspot/mikrotik", "/callbacks/lapor"):
        response = client.post(path + "?lang=en", data=body)
        assert response.status_code == 413, path
    assert "What you sent is too long" in response.get_data(as_text=True)
    raw = client.post("/radius/authorize", data=b"{" + b" " * 70_000 + b"}",
                      headers={"Authorization": "Bearer radius-token", "Content-Type": "application/json"})
    assert raw.status_code == 413


def test_an_unhandled_error_logs_the_route_not_the_session_token(app, client, token, caplog, monkeypatch):
    app.config["PROPAGATE_EXCEPTIONS"] = False  # behave like production: log and show the 500 page

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("portal.splash.render_landing", broken)
    with caplog.at_level("DEBUG"):
        response = client.get(f"/p/{token}?lang=en")
    assert response.status_code == 500
    logged = "\n".join(r.getMessage() + (str(r.exc_info) if r.exc_info else "") for r in caplog.records)
    assert "/p/<token>" in logged and "boom" in caplog.text
    assert token not in caplog.text
