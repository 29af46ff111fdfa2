"""Issue 14: only the receipt waits for the disk; counts are batched; what a power cut can take is given back."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import redis as redis_py

from portal import create_app, events
from portal.complaints import service, store
from portal.embedded_redis import EmbeddedRedis
from portal.sites import import_sites, parse_csv
from portal.tracking import normalize
from tests.conftest import CLUSTER, SITES_CSV, Resident, app_on, make_config, tracking_number


@pytest.fixture
def own_redis(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis", binary=os.environ.get("PORTAL_TEST_REDIS_BINARY")).start()
    yield server
    server.stop()


def _sizes(directory: Path) -> dict[Path, int]:
    return {path: path.stat().st_size for path in directory.rglob("*") if path.is_file()}


def _lose_unsynced_writes(directory: Path, before: dict[Path, int]) -> None:
    """What a power cut does to an ``everysec`` AOF: the writes after the last fsync are gone."""
    for path, size in _sizes(directory).items():
        if path.suffix in (".sock", ".pid", ".log"):
            continue
        if path not in before:
            path.unlink()
        elif size > before[path]:
            os.truncate(path, before[path])


def test_redis_fsyncs_once_a_second_so_pages_do_not_wait_for_the_disk(own_redis):
    client = redis_py.Redis.from_url(own_redis.url)
    assert client.config_get("appendonly")["appendonly"] == "yes"
    assert client.config_get("appendfsync")["appendfsync"] == "everysec"


def test_a_receipt_survives_a_kill_of_redis_right_after_it(own_redis, tmp_path):
    app = create_app(make_config(own_redis.url, tmp_path / "var"))
    import_sites(redis_py.Redis.from_url(own_redis.url), parse_csv(SITES_CSV))
    resident = Resident(app.test_client())
    resident.arrive()
    receipt = resident.submit()
    assert receipt.status_code == 200
    number = normalize(tracking_number(receipt.get_data(as_text=True)))
    own_redis.stop(kill=True)
    own_redis.start()
    client = redis_py.Redis.from_url(own_redis.url)
    assert client.hget(store.record_key("51", number), "status") == b"received"
    assert client.xlen(store.stream_key("51")) == 1


def test_a_receipt_survives_a_power_cut_that_takes_redis_last_second(own_redis, tmp_path):
    app = create_app(make_config(own_redis.url, tmp_path / "var"))
    client = redis_py.Redis.from_url(own_redis.url)
    import_sites(client, parse_csv(SITES_CSV))
    resident = Resident(app.test_client())
    resident.arrive()
    fields = resident.complaint()
    client.execute_command("BGREWRITEAOF")  # a settled AOF (the sites), as a long-running server has
    while client.info("persistence")["aof_rewrite_in_progress"]:
        time.sleep(0.05)
    time.sleep(1.5)  # everysec: the AOF is on disk up to here
    before = _sizes(own_redis.data_dir)
    receipt = resident.client.post(f"/p/{resident.token}/lapor", data=fields)
    assert receipt.status_code == 200
    number = normalize(tracking_number(receipt.get_data(as_text=True)))
    own_redis.stop(kill=True)
    _lose_unsynced_writes(own_redis.data_dir, before)
    own_redis.start()
    client = redis_py.Redis.from_url(own_redis.url)
    assert not client.exists(store.record_key("51", number)), "the simulated power cut kept the write"
    with app.app_context():
        assert service.replay_spool() == 0  # the worker's turn: nothing spooled, the journal rewritten
    assert client.hget(store.record_key("51", number), "status") == b"received"
    assert client.xlen(store.stream_key("51")) == 1
    with app.app_context():
        service.replay_spool()  # the same run_id again: nothing written twice
    assert client.xlen(store.stream_key("51")) == 1


def test_journal_files_go_once_redis_kept_running_past_them(own_redis, tmp_path):
    app = create_app(make_config(own_redis.url, tmp_path / "var"))
    import_sites(redis_py.Redis.from_url(own_redis.url), parse_csv(SITES_CSV))
    resident = Resident(app.test_client())
    resident.arrive()
    assert resident.submit().status_code == 200
    with app.app_context():
        journal = service.journal()
        assert len(journal.files()) == 1
        client = redis_py.Redis.from_url(own_redis.url)
        run_id = client.info("server")["run_id"]
        journal.maintain(run_id, lambda data: None)  # learns the run_id
        journal.maintain(run_id, lambda data: None, now=time.time() + 10)
        assert len(journal.files()) == 1  # too young to drop
        journal.maintain(run_id, lambda data: None, now=time.time() + 300)
        assert journal.files() == []


def test_the_journal_holds_nothing_personal_in_clear(own_redis, tmp_path):
    app = create_app(make_config(own_redis.url, tmp_path / "var"))
    import_sites(redis_py.Redis.from_url(own_redis.url), parse_csv(SITES_CSV))
    resident = Resident(app.test_client())
    resident.arrive()
    assert resident.submit(name="Ni Luh Sari", contact="0812 3456 7890").status_code == 200
    text = "".join(path.read_text() for path in (tmp_path / "var" / "journal").glob("*.jsonl"))
    for secret in ("Ni Luh Sari", "0812 3456 7890", "Puskesmas tutup", "70:8A:09", "10.5.50.2"):
        assert secret not in text
    assert oct((tmp_path / "var" / "journal").stat().st_mode & 0o777) == "0o700"


def test_impressions_are_counted_in_batches_off_the_request(own_redis, tmp_path):
    app = create_app(make_config(own_redis.url, tmp_path / "var", EVENT_FLUSH_SECONDS=0.3))
    client = redis_py.Redis.from_url(own_redis.url)
    import_sites(client, parse_csv(SITES_CSV))
    resident = Resident(app.test_client())
    for _ in range(3):
        assert resident.arrive().status_code == 200
    assert client.xlen(events.EVENTS) == 0  # not written by the requests themselves
    assert app.extensions["portal_event_buffer"].pending() == 3
    deadline = time.monotonic() + 5
    while client.xlen(events.EVENTS) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.xlen(events.EVENTS) == 3  # the background batch wrote them
    day, _ = events.wita(time.time())
    province = client.hgetall(events.COUNTERS.format(scope="p51", day=day))
    assert sum(int(n) for field, n in province.items() if field.startswith(b"t|impression|")) == 3


def test_a_batch_redis_cannot_take_goes_to_the_spool(own_redis, tmp_path):
    app = create_app(make_config(own_redis.url, tmp_path / "var", EVENT_FLUSH_SECONDS=60))
    import_sites(redis_py.Redis.from_url(own_redis.url), parse_csv(SITES_CSV))
    resident = Resident(app.test_client())
    resident.arrive()
    own_redis.stop()
    assert app.extensions["portal_event_buffer"].flush() == 1
    assert app.extensions["portal_spool"].pending()
    own_redis.start()
    with app.app_context():
        service.replay_spool()
    assert redis_py.Redis.from_url(own_redis.url).xlen(events.EVENTS) == 1


def test_complaints_are_stored_by_evalsha(client, app, redis, resident):
    # Funnel counts are written by the background batch with EVAL (events.py says why): keep
    # them buffered here, so the counts below are the request path's own.
    app.config["EVENT_FLUSH_SECONDS"] = 3600
    redis.config_resetstat()  # the server is shared by the session's tests
    resident.arrive()
    assert resident.submit().status_code == 200
    calls = redis.info("commandstats")
    assert calls.get("cmdstat_evalsha", {}).get("calls", 0) >= 1
    if not CLUSTER:  # on a cluster, scripts queued on a pipeline go as EVAL (portal/redis.py _PortalCluster)
        assert "cmdstat_eval" not in calls  # neither the store nor the limiter sends its script text
    redis.script_flush()  # as after a Redis restart: the script is loaded again, nothing fails
    other = Resident(client)
    other.arrive(mac="70:8A:09:65:4D:99", ip="10.5.50.99")
    assert other.submit().status_code == 200
    assert redis.xlen(store.stream_key("51")) == 2


def test_pages_are_gzipped_for_clients_that_accept_it(resident):
    resident.arrive()
    raw = resident.client.get(f"/p/{resident.token}")
    assert "Content-Encoding" not in raw.headers
    assert "Accept-Encoding" in raw.headers["Vary"]
    packed = resident.client.get(f"/p/{resident.token}", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert packed.headers["Content-Encoding"] == "gzip"
    import gzip
    import re

    def without_copies(html: bytes) -> bytes:  # each request seals its own session copy
        return re.sub(rb"fb=[^\"&]+|name=\"fb\" value=\"[^\"]+", b"", html)

    assert without_copies(gzip.decompress(packed.get_data())) == without_copies(raw.get_data())
    assert len(packed.get_data()) < len(raw.get_data()) / 2
    assert int(packed.headers["Content-Length"]) == len(packed.get_data())
    refused = resident.client.get(f"/p/{resident.token}", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in refused.headers
    assert "Content-Encoding" not in resident.client.get("/healthz", headers={"Accept-Encoding": "gzip"}).headers


def test_limits_ride_on_the_page_round_trip_and_still_hold(resident, app):
    """The per-client count rides on the session read; a page that never reads Redis is counted after."""
    app.config["REQUEST_LIMIT"] = 4
    resident.arrive()  # 1: rides on the session write
    assert resident.client.get(f"/p/{resident.token}").status_code == 200  # 2: on the session read
    assert resident.client.get(f"/p/{resident.token}/lapor").status_code == 200  # 3
    assert resident.client.get("/status/not-a-number").status_code == 404  # 4: no Redis trip, counted after
    refused = resident.client.get(f"/p/{resident.token}")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
    assert resident.client.get("/status/not-a-number").status_code == 429  # left over, refused after its view
    assert resident.connect().status_code == 303  # connect is never limited


def test_a_site_flood_answers_the_complaint_post_with_the_form_kept(resident, app, redis):
    app.config["SITE_REQUEST_LIMIT"] = 1
    resident.arrive(headers={"Accept-Language": "en"})
    fields = resident.complaint()  # the form is the site's one request this minute
    busy = resident.client.post(f"/p/{resident.token}/lapor", data=fields)
    assert busy.status_code == 429 and "nothing you typed is lost" in busy.get_data(as_text=True)
    assert redis.xlen(store.stream_key("51")) == 0
    from portal import limits, sessions

    with app.test_request_context():  # the refused post cost the device none of its hourly quota
        session = sessions.load(resident.token)
        assert redis.get(limits.key("dev", limits.complaint_device(session))) is None


def test_a_complaint_post_makes_three_round_trips(resident, app, redis):
    """Session read, the post's checks (site count, stored status, quota) in one script, the store script."""
    app.config["EVENT_FLUSH_SECONDS"] = 3600  # the funnel batch is not the post's own
    first = Resident(resident.client)
    first.arrive(mac="70:8A:09:65:4D:99", ip="10.5.50.99")
    assert first.submit().status_code == 200  # every script loaded once (Redis may be new to them)
    resident.arrive()
    fields = resident.complaint()
    redis.config_resetstat()
    assert resident.client.post(f"/p/{resident.token}/lapor", data=fields).status_code == 200
    if CLUSTER:  # commandstats are per node there; the single-server passes count the trips
        return
    calls = {name: stats["calls"] for name, stats in redis.info("commandstats").items()}
    assert calls.get("cmdstat_evalsha") == 3  # the client's request counter, the checks, the store
    # The session is read and not written: it no longer lists its complaints.
    assert calls.get("cmdstat_get") == 1 and "cmdstat_set" not in calls


def test_cached_receipts_carry_only_their_own_number_and_session(client, app):
    """Receipts are rendered once per (language, site, held) and filled in: never another resident's values."""
    first, second = Resident(client), Resident(client)
    first.arrive()
    second.arrive(mac="70:8A:09:65:4D:99", ip="10.5.50.99")
    pages = {}
    for name, resident in (("first", first), ("second", second)):
        html = resident.submit().get_data(as_text=True)
        pages[name] = (html, tracking_number(html), resident.token)
    assert pages["first"][1] != pages["second"][1]
    for me, other in (("first", "second"), ("second", "first")):
        html, number, token = pages[me]
        assert number in html and f"/status/{number}" in html and f"/p/{token}/connect" in html
        assert pages[other][1] not in html and pages[other][2] not in html
        assert "mark0" not in html
    again = first.client.post(f"/p/{first.token}/lapor", data=first.complaint())
    assert "mark0" not in again.get_data(as_text=True) and tracking_number(again.get_data(as_text=True))


def test_one_landing_render_serves_every_site_each_with_its_own_name(own_redis, tmp_path):
    """The landing is rendered per (campaign, language), not per site: 100,000 sites cost what 2 do."""
    app = app_on(own_redis.url, tmp_path / "var")
    header, *rows = SITES_CSV.strip().splitlines()
    mikrotik = rows[0].split(",")
    extra = []
    for n in range(40):
        fields = list(mikrotik)
        fields[0], fields[1], fields[-1] = f"BALI-9{n:03d}", f"Balai <b>{n}</b> & Co", f"hs-many-{n}"
        extra.append(",".join(fields))
    import_sites(redis_py.Redis.from_url(own_redis.url), parse_csv("\n".join([header, *extra]) + "\n"))
    client = app.test_client()
    pages = {}
    for n in range(40):
        resident = Resident(client)
        html = resident.arrive(identity=f"hs-many-{n}", mac=f"70:8A:09:65:4E:{n:02X}").get_data(as_text=True)
        pages[n] = html
    cache = app.extensions["portal_page_cache"]
    assert len([key for key in cache if key[0] == "landing"]) == 1
    for n, html in pages.items():
        assert f"Balai &lt;b&gt;{n}&lt;/b&gt; &amp; Co" in html  # its own site, escaped
        assert not any(f"&lt;b&gt;{m}&lt;/b&gt;" in html for m in pages if m != n)
        assert "mark0" not in html
    unknown = Resident(client).arrive(identity="hs-nobody-knows").get_data(as_text=True)
    assert "belum terdaftar" in unknown and "Balai" not in unknown  # Indonesian, the default language


def test_status_pages_share_a_render_per_state_and_show_only_their_own_values(client, app, redis):
    """One render per (language, state): each complaint's page carries its own number and LAPOR! id."""
    numbers = []
    for n in range(3):
        resident = Resident(client)
        resident.arrive(mac=f"70:8A:09:65:4F:{n:02X}", ip=f"10.5.50.{10 + n}")
        numbers.append(tracking_number(resident.submit().get_data(as_text=True)))
    for number, lapor_id in zip(numbers[1:], ("<7001>", "7002")):
        redis.hset(store.record_key("51", normalize(number)), mapping={
            "status": "forwarded", "lapor_id": lapor_id, "lapor_url": f"https://www.lapor.go.id/laporan/{lapor_id}"})
    pages = {number: client.get(f"/status/{number}?lang=en").get_data(as_text=True) for number in numbers}
    assert len([key for key in app.extensions["portal_page_cache"] if key[0] == "status"]) == 2
    for number, html in pages.items():
        assert f"Report {number}" in html and f"/status/{number}?lang=id" in html and "mark0" not in html
        assert not any(other in html for other in numbers if other != number)
    assert "&lt;7001&gt;" in pages[numbers[1]] and "7002" not in pages[numbers[1]]
    assert "laporan/7002" in pages[numbers[2]] and "7001" not in pages[numbers[2]]
    assert "LAPOR! number" not in pages[numbers[0]]
