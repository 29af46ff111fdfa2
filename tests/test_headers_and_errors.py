"""Security headers on every response, 4xx for every malformed token, fail open on a refusing Redis."""
from __future__ import annotations

import base64
import hashlib
import os
import re
import time

import pytest
import redis as redis_py
from redis.backoff import NoBackoff
from redis.retry import Retry

from landing_pages import theme_css
from portal.crypto import get_crypto
from portal.redis import WriteRefusedError
from tests.conftest import app_on, Resident

PAGES = [
    ("POST", "/hotspot/mikrotik"),        # landing
    ("GET", "/p/nosuchtoken"),            # expired session (410)
    ("GET", "/no/such/page"),             # 404
    ("GET", "/status"),
    ("GET", "/status/ABCD-EFGH-J"),
    ("GET", "/privacy"),
    ("GET", "/healthz"),
    ("GET", "/api/captive"),
    ("POST", "/hotspot/mikrotik?x=1"),    # malformed arrival (400)
]


def assert_security_headers(response):
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    policy = headers["Content-Security-Policy"]
    assert "script-src 'none'" in policy and "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert "no-store" in headers["Cache-Control"]  # pages with a token must not be kept by any cache


@pytest.mark.parametrize("method,path", PAGES)
def test_every_response_carries_the_security_headers(client, resident, method, path):
    if path == "/hotspot/mikrotik":
        response = resident.arrive()
    else:
        response = client.open(path, method=method, data={} if method == "POST" else None)
    assert_security_headers(response)


def test_the_inline_stylesheet_is_allowed_by_its_hash_and_no_script_runs(resident):
    response = resident.arrive()
    html = response.get_data(as_text=True)
    style = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in response.headers["Content-Security-Policy"]
    assert style == theme_css()
    assert "<script" not in html and " style=" not in html


def test_the_grant_form_needs_no_script(app, redis, resident):
    from tests.hotspot_hooks.helpers import add_site

    add_site(app, redis, site_id="BALI-0001", vendor="mikrotik", gateway_id="hs-5101011006-1",
             settings={"login_mode": "account", "username": "guest"}, secrets={"password": "pw"})
    resident.arrive(**{"chap-id": "\\001", "chap-challenge": "\\357" * 16})
    page = resident.connect()
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'method="post"' in html
    assert "<script" not in html and '<button class="btn btn-main" type="submit">' in html


def sealed(app, data) -> str:
    with app.app_context():
        return get_crypto().seal(data)


@pytest.mark.parametrize("token", [
    "x.junk", "x.", "x.%00", "x.%C3%A9t%C3%A9", "x.gAAAAABjunkjunk", "a" * 65, "%C3%A9",
    "x.{sealed_list}", "x.{sealed_partial}", "x.{sealed_wrong_types}",
])
@pytest.mark.parametrize("suffix,method", [("", "GET"), ("/lapor", "GET"), ("/lapor", "POST"),
                                           ("/connect", "POST"), ("/wait", "GET")])
def test_a_malformed_token_answers_4xx_with_the_translated_page(app, client, token, suffix, method):
    token = token.format(sealed_list=sealed(app, {"x": [1, 2]}) and sealed(app, {}),
                         sealed_partial=sealed(app, {"site_id": "BALI-0001"}),
                         sealed_wrong_types=sealed(app, {"arrival": "not a dict"}))
    response = client.open(f"/p/{token}{suffix}?lang=en", method=method, data={"fb": "x.junk"})
    assert 400 <= response.status_code < 500, response.status_code
    assert "This page has expired" in response.get_data(as_text=True) or response.status_code == 404
    assert_security_headers(response)


@pytest.mark.parametrize("back", ["x.junk", "x." + "A" * 300, "%C3%A9", "x.{sealed}", "../../etc"])
def test_privacy_with_a_malformed_way_back_is_the_plain_notice(app, client, back):
    back = back.format(sealed=sealed(app, {"arrival": 1}))
    response = client.get(f"/privacy?back={back}&lang=en")
    assert response.status_code == 200
    assert back not in response.get_data(as_text=True)


def test_a_fallback_copy_that_is_not_a_session_is_refused(app, client, resident):
    resident.arrive()
    bogus = sealed(app, {"token": resident.token, "arrival": None})
    response = client.post(f"/p/{resident.token}/connect", data={"fb": bogus})
    assert response.status_code in (200, 303)  # Redis is up: the real session is used, not the copy


# --- a Redis that is up but refuses writes -------------------------------------------------------

@pytest.fixture
def own_server(own_redis):
    server = own_redis
    yield server
    client = redis_py.Redis.from_url(server.url, socket_timeout=5)
    wait_until_loaded(client)
    client.replicaof("NO", "ONE")  # let it shut down cleanly whatever state the test left
    client.config_set("save", "")
    client.config_set("maxmemory", 0)
    client.config_set("min-replicas-to-write", 0)


#: Every way a live server refuses writes (issue 15): each gets the same fail-open treatment.
REFUSALS = ["oom", "readonly", "misconf", "noreplicas", "loading"]


def wait_until_loaded(client, timeout: float = 30.0) -> None:
    """Wait while a server answers LOADING (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.exists("probe")  # a read: PING itself is refused under MISCONF
            return
        except redis_py.BusyLoadingError:
            time.sleep(0.1)
    raise AssertionError("the server kept loading")


def refuse_writes(client, how: str, server) -> None:
    """Put a real server (an EmbeddedRedis) into a state where it refuses writes."""
    data_dir = server.data_dir
    if how == "oom":
        client.config_set("maxmemory", 1)  # noeviction: every write answers OOM
    elif how == "readonly":
        # A replica of a primary that is not there: it answers every write with READONLY.
        client.replicaof("127.0.0.1", 1)
    elif how == "noreplicas":
        # min-replicas-to-write with no replica attached: every write answers NOREPLICAS.
        client.config_set("min-replicas-to-write", 1)
        with pytest.raises(WriteRefusedError, match="replicas"):
            client.set("probe", "1")
    elif how == "loading":
        # A restart that reads its data slowly: 64 MB of incompressible values, loaded with a
        # pause per key, so the server answers LOADING for about 15 s (a busy machine included). (It answers clients
        # only every 2 MB read, so each value is 2 MB: an answer every pause.)
        for n in range(32):
            client.set(f"ballast:{n}", os.urandom(2 << 20))
        # Redis serves LOADING between keys only while it reads an RDB file (not an AOF), so the
        # restart reads a snapshot, with the AOF off.
        client.save()
        client.close()
        for _ in range(2):  # a busy machine may start the server so late that the load is over
            server.stop()
            server.extra_args = ["--appendonly", "no", "--key-load-delay", "500000"]
            server.wait_loading = False
            server.start(timeout=40)
            server.extra_args, server.wait_loading = [], True
            probe = redis_py.Redis.from_url(server.url, socket_timeout=3, retry=Retry(NoBackoff(), 0))
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    probe.ping()
                except redis_py.BusyLoadingError:
                    return
                except (redis_py.ConnectionError, redis_py.TimeoutError):
                    time.sleep(0.02)
                    continue
                break  # loaded already: restart and look again
        raise AssertionError("the server never answered LOADING")
    elif how == "misconf":
        # A failing background save with stop-writes-on-bgsave-error: writes answer MISCONF.
        client.config_set("appendonly", "no")
        client.config_set("save", "1 1")
        client.config_set("stop-writes-on-bgsave-error", "yes")
        # Nothing can be saved: the snapshot's name is taken by a directory, so the rename that
        # ends every background save fails, even as root. (`dir` itself is a protected config
        # on Redis 7 and cannot be pointed elsewhere at run time.)
        (data_dir / "dump.rdb" / "in-the-way").mkdir(parents=True)
        client.set("k", "v")
        try:
            client.bgsave()
        except redis_py.ResponseError:
            pass

        for _ in range(100):
            try:
                client.set("probe", "1")
            except redis_py.ResponseError as error:
                assert isinstance(error, WriteRefusedError), error  # typed, though redis-py has no class
                return
            time.sleep(0.05)
            try:
                client.bgsave()
            except redis_py.ResponseError:
                pass
        raise AssertionError("the server never refused writes")


def accept_writes(client, how: str, server) -> None:
    """Undo :func:`refuse_writes`: the server takes writes again."""
    if how == "oom":
        client.config_set("maxmemory", 0)
    elif how == "readonly":
        client.replicaof("NO", "ONE")
    elif how == "noreplicas":
        client.config_set("min-replicas-to-write", 0)
    elif how == "loading":
        try:
            client.config_set("key-load-delay", 0)  # Redis 7 lets the load finish now; 6.2 refuses
        except redis_py.ResponseError:
            pass
        wait_until_loaded(client)
    elif how == "misconf":
        import shutil

        shutil.rmtree(server.data_dir / "dump.rdb")
        client.config_set("stop-writes-on-bgsave-error", "no")
        client.config_set("save", "")
    client.set("probe", "1")  # raises if it still refuses


@pytest.mark.parametrize("how", REFUSALS)
def test_a_redis_that_refuses_writes_fails_open(own_server, tmp_path, how):
    url = own_server.url
    # LOADING answers only between keys it loads: a longer timeout sees the answer, and the
    # breaker then keeps the rest of the journey off the loading server.
    overrides = {"REDIS_TIMEOUT": 2.0, "REDIS_RETRY_AFTER": 60.0} if how == "loading" else {}
    app = app_on(url, tmp_path / "var", **overrides)
    direct = redis_py.Redis.from_url(url)
    resident = Resident(app.test_client())
    assert resident.arrive().status_code == 200
    refuse_writes(direct, how, own_server)
    newcomer = Resident(app.test_client())
    landing = newcomer.arrive()
    assert landing.status_code == 200, landing.status_code
    assert newcomer.token.startswith("x.")  # the session travels in its token
    receipt = newcomer.submit()
    assert receipt.status_code == 200
    assert app.extensions["portal_spool"].pending()  # the complaint waits in the spool, not lost
    grant = newcomer.connect()
    assert grant.status_code == 303
    if how == "loading":
        # Reads are refused too: the one who arrived before gets an answer, never a 5xx.
        assert resident.client.get(f"/p/{resident.token}/lapor").status_code < 500
        assert resident.connect().status_code < 500
        return
    # And the one who arrived before: their session is in Redis, which still answers reads.
    assert resident.submit().status_code == 200
    assert resident.connect().status_code == 303
