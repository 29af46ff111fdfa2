"""The resident journey on MikroTik through the Flask test client."""
from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from portal import sessions
from portal.complaints import store
from portal.tracking import normalize
from tests.conftest import tracking_number


def test_arrival_renders_landing_with_site_and_village(resident):
    response = resident.arrive()
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Wantilan Desa Adat Baler Bale Agung" in html
    assert "Negara" in html and "Kabupaten Jembrana" in html
    assert "SP4N LAPOR!" in html
    assert resident.token


def test_session_is_sealed_under_its_token_with_a_ttl(resident, redis, app):
    resident.arrive()
    with app.test_request_context():
        key, _ = sessions._token_keys(resident.token)
        assert 0 < redis.ttl(key) <= 900
        # Only the token opens the record, and the token is not in Redis: not as a key, not inside.
        assert "70:8A:09:65:4D:EC" in sessions.open_record(resident.token, key, redis.get(key))
    assert redis.get(f"portal:sess:{resident.token}") is None
    # Nowhere in Redis in clear: the session is sealed, events and counters hold the pseudonymous id.
    for other in redis.keys("*"):
        assert resident.token.encode() not in other
        dump = json.dumps([str(x) for x in _values(redis, other)])
        assert "70:8A:09" not in dump and "10.5.50.253" not in dump and resident.token not in dump


def _values(redis, key):
    kind = redis.type(key).decode()
    if kind == "string":
        return [redis.get(key)]
    if kind == "hash":
        return list(redis.hgetall(key).items())
    if kind == "stream":
        return redis.xrange(key)
    return []


def test_trial_grant_redirects_to_router_login(resident):
    resident.arrive()
    response = resident.connect()
    assert response.status_code == 303
    target = urlsplit(response.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == "http://10.5.50.1/login"
    query = parse_qs(target.query)
    assert query["username"] == ["T-70:8A:09:65:4D:EC"]
    assert query["dst"] == ["http://example.com/"]


def test_complaint_receipt_and_status(resident, redis, app):
    resident.arrive()
    response = resident.submit()
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    shown = tracking_number(html)
    canonical = normalize(shown)
    assert canonical
    record = store.read(redis, "51", canonical)
    assert record["status"] == "received"
    assert record["site_id"] == "BALI-0001"
    assert "Puskesmas tutup" not in json.dumps(record)  # the text is sealed
    assert redis.xlen(store.stream_key("51")) == 1
    status = resident.client.get(f"/status/{shown}")
    assert status.status_code == 200
    assert shown in status.get_data(as_text=True)


def test_resubmitting_the_same_form_stores_one_complaint(resident, redis):
    resident.arrive()
    fields = resident.complaint()
    first = resident.client.post(f"/p/{resident.token}/lapor", data=fields)
    second = resident.client.post(f"/p/{resident.token}/lapor", data=fields)
    assert tracking_number(first.get_data(as_text=True)) == tracking_number(second.get_data(as_text=True))
    assert redis.xlen(store.stream_key("51")) == 1


def test_unknown_site_still_lets_the_resident_online(resident):
    response = resident.arrive(identity="not-registered-router", headers={"Accept-Language": "en"})
    assert response.status_code == 200
    assert "not registered" in response.get_data(as_text=True)
    grant = resident.connect()
    assert grant.status_code == 303
    assert grant.headers["Location"].startswith("http://10.5.50.1/login?")


def test_malformed_arrival_gets_a_clear_page(client):
    response = client.post("/hotspot/mikrotik", data={"identity": "x", "link-login-only": "javascript:alert(1)", "lang": "en"})
    assert response.status_code == 400
    assert "incomplete information" in response.get_data(as_text=True)


def test_unknown_vendor_is_a_page_not_a_500(client):
    assert client.get("/hotspot/nosuchvendor").status_code == 404


def test_expired_session_explains_what_to_do(client):
    response = client.get("/p/doesnotexist?lang=en")
    assert response.status_code == 410
    assert "expired" in response.get_data(as_text=True)
