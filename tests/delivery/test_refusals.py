"""The delivery worker keeps running while Redis refuses writes, and delivers once it takes them again.

Before issue 15 a READONLY answer (the old primary back as a replica) made both workers exit
with rc=1. Each refusal here is a real server put into that state (tests/test_headers_and_errors.py).
"""
from __future__ import annotations

import time

import pytest
import redis as redis_py

from portal import create_app
from portal.sites import import_sites, parse_csv
from tests.conftest import SITES_CSV, Resident, make_config
from tests.test_headers_and_errors import REFUSALS, accept_writes, own_server, refuse_writes  # noqa: F401

from .conftest import submit, wait_for, worker_process


@pytest.mark.parametrize("how", REFUSALS)
def test_the_worker_rides_out_a_refusing_redis_and_delivers_once(own_server, tmp_path, receiver, delivery, how):
    overrides = {"REDIS_TIMEOUT": 2.0, "REDIS_RETRY_AFTER": 60.0} if how == "loading" else {}
    app = create_app(make_config(own_server.url, tmp_path / "var", DELIVERY_CONFIG=delivery,
                                 DEVICE_LIMIT=10000, SITE_LIMIT=10000, **overrides))
    direct = redis_py.Redis.from_url(own_server.url)
    import_sites(direct, parse_csv(SITES_CSV))
    before = submit(Resident(app.test_client()))          # in Redis, waiting in the stream
    refuse_writes(direct, how, own_server)
    worker = worker_process(app, tmp_path, f"refusal-{how}")
    try:
        during = submit(Resident(app.test_client()))      # refused: kept in the spool
        assert app.extensions["portal_spool"].pending()
        time.sleep(3)                                     # several turns of the worker against the refusal
        assert worker.poll() is None, (tmp_path / f"worker-refusal-{how}.log").read_text()
        accept_writes(direct, how, own_server)
        wanted = set(before + during)
        wait_for(lambda: wanted <= set(receiver.stored), timeout=40)
        assert worker.poll() is None
        assert all(receiver.stored_count[n] == 1 for n in wanted)
        assert not app.extensions["portal_spool"].pending()  # the worker replayed it
    finally:
        worker.terminate()
        code = worker.wait(timeout=30)
    assert code == 0
