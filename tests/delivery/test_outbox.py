"""The local outbox channel: what `make run` delivers to, one readable JSON file per complaint."""
from __future__ import annotations

import json
import stat
import time

import pytest

from portal.complaints import store
from portal.delivery import settings, state
from portal.delivery.channels import PermanentError, TemporaryError
from portal.delivery.channels.outbox import OutboxChannel
from portal.delivery.settings import ConfigError
from portal.tracking import check_symbol, display

from .conftest import drain, make_forwarder, submit

BODY = "Puskesmas tutup jam 10 pagi padahal jadwalnya sampai jam 14."


@pytest.fixture
def app_config(app_config, tmp_path):
    app_config["OUTBOX_DIR"] = str(tmp_path / "outbox")
    return app_config


@pytest.fixture
def outbox(app_config, delivery, tmp_path):
    """The embedded default: no channel file, only the outbox."""
    delivery["channels"] = []
    return tmp_path / "outbox"


def files(directory) -> dict[str, dict]:
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.json"))}


def test_each_complaint_becomes_one_readable_file(outbox, app, resident, redis):
    [named] = submit(resident, name="Made Wirawan", contact="081234567890")
    [anonymous] = submit(resident, name="Ketut Sari", contact="ketut@example.org", anonim="y", rahasia="y")
    assert not outbox.exists() or not list(outbox.iterdir())  # nothing before the worker runs
    assert drain(app) == 2
    found = files(outbox)
    assert set(found) == {f"{display(named)}.json", f"{display(anonymous)}.json"}
    plain = found[f"{display(named)}.json"]
    assert plain["tracking"] == named and plain["body"] == BODY
    assert plain["reporter"] == {"name": "Made Wirawan", "contact": "081234567890"}
    assert plain["anonim"] is False and plain["visibility"] == "public"
    # Anonim: no identity anywhere in the file; Rahasia: marked private.
    raw = (outbox / f"{display(anonymous)}.json").read_text(encoding="utf-8")
    assert "Ketut" not in raw and "ketut@example.org" not in raw
    secret = found[f"{display(anonymous)}.json"]
    assert secret["reporter"] is None and secret["anonim"] is True and secret["rahasia"] is True
    assert secret["visibility"] == "private"
    # Only the portal's user may read them; no temporary file is left behind.
    for path in outbox.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in outbox.iterdir() if p.name.startswith(".")] == []
    for tracking in (named, anonymous):
        assert store.read(redis, "51", tracking)["status"] == "forwarded"
        assert set(state.delivered_channels(redis, "51", tracking)) == {"outbox"}


def test_a_redelivery_does_not_duplicate_or_rewrite_the_file(outbox, app, resident, redis):
    [tracking] = submit(resident)
    drain(app)
    path = outbox / f"{display(tracking)}.json"
    before = path.stat()
    # A crash after the write but before the success was recorded: the same complaint comes again.
    redis.hdel(state.keys("51", tracking)["state"], "ch:outbox")
    redis.xadd(store.stream_key("51"), {"tracking": tracking})
    assert drain(app) == 1
    after = path.stat()
    assert list(outbox.glob("*.json")) == [path]
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert set(state.delivered_channels(redis, "51", tracking)) == {"outbox"}


def test_outbox_beside_the_configured_channels(app_config, app, resident, receiver, redis, tmp_path):
    [tracking] = submit(resident)
    drain(app)
    assert receiver.stored_count == {tracking: 1}
    assert files(tmp_path / "outbox")[f"{display(tracking)}.json"]["tracking"] == tracking
    assert set(state.delivered_channels(redis, "51", tracking)) == {"lapor", "outbox"}


def test_retention_erases_the_outbox_file_with_the_record(outbox, app, resident, redis):
    [tracking] = submit(resident, name="Made Wirawan", contact="081234567890")
    worker = make_forwarder(app)
    drain(app, worker)
    path = outbox / f"{display(tracking)}.json"
    assert path.exists()
    with app.app_context():
        worker.housekeeping(time.time() + 91 * 86400)  # PORTAL_RETENTION_DAYS (90) later
    assert not path.exists()
    assert "sealed_contact" not in store.read(redis, "51", tracking)


def test_outbox_unit_atomic_idempotent_and_safe(tmp_path):
    key = "K7Q2MX9D" + check_symbol("K7Q2MX9D")
    channel = OutboxChannel(name="outbox", directory=str(tmp_path / "box"))
    channel.send({"tracking": key, "body": "satu"}, key=key)
    channel.send({"tracking": key, "body": "dua"}, key=key)  # a resend keeps the first
    assert files(tmp_path / "box") == {f"{display(key)}.json": {"tracking": key, "body": "satu"}}
    with pytest.raises(PermanentError):
        channel.send({}, key="../../etc/passwd")
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    with pytest.raises(TemporaryError):  # the operator can fix it; retried, then dead-lettered
        OutboxChannel(name="outbox", directory=str(blocked)).send({}, key=key)
    channel.erase(key)
    channel.erase(key)  # already gone: nothing to do
    assert files(tmp_path / "box") == {}


def test_outbox_name_clash_and_concurrency_are_checked():
    with pytest.raises(ConfigError, match="PORTAL_OUTBOX_DIR"):
        settings.parse({"channels": [{"name": "outbox", "type": "outbox", "directory": "x"}]}, outbox_dir="y")
    with pytest.raises(ConfigError, match="concurrency"):
        settings.parse({"concurrency": 0})
    parsed = settings.parse({"concurrency": 4, "channels": [
        {"name": "a", "type": "outbox", "directory": "a", "concurrency": 2},
        {"name": "b", "type": "outbox", "directory": "b"}]}, outbox_dir="c")
    assert [parsed.limit(n) for n in ("a", "b", "outbox")] == [2, 4, 4]
