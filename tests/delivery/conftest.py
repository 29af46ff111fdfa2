"""Fixtures for delivery: stand-in receivers on 127.0.0.1, a configured app, a worker, helpers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from portal.delivery.cli import build_forwarder
from tests.conftest import tracking_number
from portal.tracking import normalize

from .standins import Receiver, SMTPStandIn

ROOT = Path(__file__).resolve().parent.parent.parent
CALLBACK_SECRET = "callback-secret-for-tests"
WEBHOOK_SECRET = "webhook-secret-for-tests"


@pytest.fixture
def receiver():
    """The LAPOR! stand-in; tests script its misbehaviour."""
    server = Receiver(hang=1.5).start()
    yield server
    server.stop()


@pytest.fixture
def smtp_server():
    server = SMTPStandIn().start()
    yield server
    server.stop()


def lapor_channel(receiver, **extra) -> dict:
    """A LAPOR! channel aimed at *receiver*, with a short timeout."""
    return {"name": "lapor", "type": "lapor", "url": receiver.url, "token_env": "TEST_LAPOR_TOKEN",
            "timeout": 0.5, "response": {"id": "trackingid", "url": "link"}, **extra}


@pytest.fixture
def delivery(receiver, monkeypatch):
    """The delivery configuration; tests replace ``channels`` or ``retry`` before using ``app``."""
    monkeypatch.setenv("TEST_LAPOR_TOKEN", "lapor-token")
    monkeypatch.setenv("TEST_CALLBACK_SECRET", CALLBACK_SECRET)
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", WEBHOOK_SECRET)
    return {
        "retry": {"max": 4, "base": 0.05, "cap": 0.2, "jitter": 0.5},
        "claim_idle": 1.0,
        "block": 0.1,
        "spool_every": 0.0,
        "callback": {"secret_env": "TEST_CALLBACK_SECRET", "window": 300},
        "channels": [lapor_channel(receiver)],
    }


@pytest.fixture
def app_config(app_config, delivery):
    app_config.update(DELIVERY_CONFIG=delivery, DEVICE_LIMIT=10000, SITE_LIMIT=10000)
    return app_config


def make_forwarder(app, consumer: str = "test-1"):
    """A worker on the test app (reads ``delivery`` now: change it before calling)."""
    with app.app_context():
        return build_forwarder(app, consumer)


def drain(app, forwarder=None, timeout: float = 30.0) -> int:
    """Run a worker in burst mode until the queue is empty (bounded)."""
    forwarder = forwarder or make_forwarder(app)
    with app.app_context():
        return forwarder.run(burst=True, timeout=timeout)


def turns_until(app, forwarder, predicate, timeout: float = 20.0):
    """Run single turns of *forwarder* until *predicate* holds (sends end in the channels' threads)."""
    with app.app_context():
        return wait_for(lambda: forwarder.work_once(block=0.05) is not None and predicate(), timeout=timeout)


def submit(resident, count: int = 1, **changes) -> list[str]:
    """File *count* complaints through the portal; return their canonical tracking numbers."""
    if not resident.token:
        resident.arrive()
    numbers = []
    for _ in range(count):
        response = resident.submit(**changes)
        assert response.status_code == 200
        numbers.append(normalize(tracking_number(response.get_data(as_text=True))))
    return numbers


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05):
    """Poll *predicate* until it is true (bounded wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def worker_process(app, tmp_path, consumer: str, env: dict | None = None) -> subprocess.Popen:
    """``flask --app portal deliver`` as a real subprocess on the test app's configuration."""
    config_path = tmp_path / f"delivery-{consumer}.json"
    config_path.write_text(json.dumps(app.config["DELIVERY_CONFIG"]))
    child_env = dict(os.environ, **(env or {}))
    for key in ("REDIS_URL", "SECRET_KEY", "DEVICE_KEY", "DATA_KEYS", "VAR_DIR", "PUBLIC_URL", "PROVINCE"):
        child_env[f"PORTAL_{key}"] = str(app.config[key])
    child_env["PORTAL_DELIVERY_CONFIG"] = str(config_path)
    log = open(tmp_path / f"worker-{consumer}.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "portal", "deliver", "--consumer", consumer],
                            env=child_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
