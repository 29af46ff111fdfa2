"""Request limits in the app (no nginx needed): per client, per site, status lookups; fail open."""
from __future__ import annotations


from redis.crc import key_slot

from portal.complaints import store
from tests.conftest import app_on, Resident

def valid_number(n: int) -> str:
    from portal.tracking import ALPHABET, check_symbol, display

    body = f"ABCDEF{ALPHABET[n // 32]}{ALPHABET[n % 32]}"
    return display(body + check_symbol(body))


def test_status_lookups_beyond_the_limit_get_a_translated_429(client, app):
    app.config["STATUS_LIMIT"] = 3
    for n in range(3):
        assert client.get(f"/status/{valid_number(n)}?lang=en").status_code == 404  # unknown, but looked up
    response = client.get(f"/status/{valid_number(3)}?lang=en")
    assert response.status_code == 429
    assert "Please wait a moment" in response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) > 0
    balinese = client.get(f"/status/{valid_number(4)}?lang=ban")
    assert balinese.status_code == 429
    assert "Indayang antosang akejep" in balinese.get_data(as_text=True)
    indonesian = client.get(f"/status/{valid_number(5)}", headers={"Accept-Language": "id"})
    assert "Mohon tunggu sebentar" in indonesian.get_data(as_text=True)


def test_per_client_request_limit_without_nginx(client, app):
    app.config["REQUEST_LIMIT"] = 5
    answers = [client.get("/status?lang=en").status_code for _ in range(7)]
    assert answers == [200] * 5 + [429] * 2
    assert client.get("/healthz").status_code == 200  # health checks are not resident traffic


def test_the_limit_is_per_client_address(client, app):
    app.config["REQUEST_LIMIT"] = 2
    codes = [client.get("/status", environ_base={"REMOTE_ADDR": "192.0.2.1"}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    other = client.get("/status", environ_base={"REMOTE_ADDR": "192.0.2.2"})
    assert other.status_code == 200


def test_connect_is_never_refused_by_the_request_limit(resident, app):
    app.config["REQUEST_LIMIT"] = 2
    resident.arrive()
    resident.client.get("/status")
    assert resident.client.get("/status").status_code == 429
    assert resident.connect().status_code == 303  # still gets online


def test_per_site_limit_on_the_complaint_form_keeps_what_was_typed(client, app, redis):
    app.config["SITE_REQUEST_LIMIT"] = 2
    first, second = Resident(client), Resident(client)
    first.arrive(headers={"Accept-Language": "en"})
    second.arrive(mac="70:8A:09:65:4D:99", ip="10.5.50.99", headers={"Accept-Language": "en"})
    fields = first.complaint()  # opening the form is the site's first request this minute
    assert first.client.post(f"/p/{first.token}/lapor", data=fields).status_code == 200
    retry = first.client.post(f"/p/{first.token}/lapor", data=dict(fields, body=fields["body"] + " Lagi."))
    assert retry.status_code == 429
    assert "nothing you typed is lost" in retry.get_data(as_text=True)
    assert "Puskesmas tutup" in retry.get_data(as_text=True)
    form = second.client.get(f"/p/{second.token}/lapor")
    assert form.status_code == 429 and "Please wait a moment" in form.get_data(as_text=True)
    assert redis.xlen(store.stream_key("51")) == 1


def test_limit_keys_are_hash_tagged_by_province(client, app, redis):
    client.get("/status/" + valid_number(1))
    keys = [k for k in redis.scan_iter(match="portal:*rl:*")]
    assert keys
    assert {key_slot(k) for k in keys} == {key_slot(store.stream_key("51").encode())}
    assert key_slot(store.held_key("51").encode()) == key_slot(store.stream_key("51").encode())


def test_limiter_fails_open_with_redis_stopped(own_redis, tmp_path):
    app = app_on(own_redis.url, tmp_path / "var", REQUEST_LIMIT=1, STATUS_LIMIT=1,
                                 SITE_REQUEST_LIMIT=1, DEVICE_LIMIT=1, SITE_LIMIT=1)
    resident = Resident(app.test_client())
    assert resident.arrive().status_code == 200  # warms the site registry
    assert resident.client.get("/status").status_code == 429  # the limit holds while Redis is up
    own_redis.stop()
    for _ in range(3):
        assert resident.arrive().status_code == 200
    assert resident.token.startswith("x.")
    for n in range(2):
        response = resident.submit()
        assert response.status_code == 200
        assert 'id="held-notice"' not in response.get_data(as_text=True)  # no quota to count: forwarded
    assert resident.client.get(f"/status/{valid_number(1)}").status_code == 503  # unavailable, not 429 or 500
    assert resident.connect().status_code == 303
    own_redis.start()
