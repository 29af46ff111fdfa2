"""Personal data erased after delivery plus the retention period; key rotation."""
from __future__ import annotations

import time

from cryptography.fernet import Fernet

from portal.complaints import store
from portal.crypto import Crypto
from portal.delivery import retention, rotate_complaints, state

from .conftest import drain, submit


def test_purge_erases_personal_data_only_after_retention(app, resident, redis):
    [tracking] = submit(resident, name="Made Wirawan", contact="081234567890")
    [undelivered] = submit(resident, name="Ketut Sari", contact="089876543210")
    drain(app)  # delivers both; pretend the second was never delivered
    redis.zrem(state.keys("51")["retention"], undelivered)
    days = app.config["RETENTION_DAYS"]
    assert retention.purge_expired(redis, "51", retention_days=days, now=time.time() + (days - 1) * 86400) == 0
    assert store.read(redis, "51", tracking)["sealed_contact"]
    assert retention.purge_expired(redis, "51", retention_days=days, now=time.time() + (days + 1) * 86400) == 1
    record = store.read(redis, "51", tracking)
    assert "sealed_contact" not in record and "sealed_text" not in record and record["erased_at"]
    assert record["status"] == "forwarded" and record["category"] == "kesehatan"  # status page still works
    assert store.read(redis, "51", undelivered)["sealed_contact"]


def test_purge_expired_cli(app, resident, redis, runner):
    app.config["RETENTION_DAYS"] = 0
    [tracking] = submit(resident, name="Made Wirawan")
    drain(app)
    result = runner.invoke(args=["complaints", "purge-expired"])
    assert "erased personal data of 1 complaint(s)" in result.output
    assert "sealed_contact" not in store.read(redis, "51", tracking)


def test_worker_purges_on_its_schedule(app, resident, redis):
    app.config["RETENTION_DAYS"] = 0
    [tracking] = submit(resident, name="Made Wirawan")
    drain(app)
    drain(app)  # a fresh worker purges on its first turn
    assert "sealed_text" not in store.read(redis, "51", tracking)


def test_rotate_complaints_reencrypts_under_the_newest_key(app, resident, redis):
    [tracking] = submit(resident, name="Made Wirawan", contact="081234567890")
    old_keys = app.config["DATA_KEYS"]
    new_key = Fernet.generate_key().decode()
    rotating = Crypto(app.config["DEVICE_KEY"], f"{new_key},{old_keys}")
    assert rotate_complaints(redis, rotating) == 2
    only_new = Crypto(app.config["DEVICE_KEY"], new_key)
    record = store.read(redis, "51", tracking)
    assert only_new.unseal(record["sealed_contact"]) == {"name": "Made Wirawan", "contact": "081234567890"}
    assert only_new.unseal(record["sealed_text"])["body"].startswith("Puskesmas")
