"""Delivered (worker) and answered (receiver callback) reach the funnel, each counted once."""
from __future__ import annotations

import json
import time

from portal import funnel
from portal.delivery import signing
from portal.tracking import display

from .conftest import CALLBACK_SECRET, drain, submit


def answer(client, tracking: str):
    raw = json.dumps({"tracking": display(tracking), "status": "answered"}).encode()
    return client.post("/callbacks/lapor", data=raw,
                       headers={**signing.sign(CALLBACK_SECRET, raw), "Content-Type": "application/json"})


def test_delivered_and_answered_are_counted_once(app, resident, client, redis):
    first, second = submit(resident, count=2)
    drain(app)
    drain(app)  # nothing left: no second count
    assert answer(client, first).json["result"] == "updated"
    assert answer(client, first).json["result"] == "duplicate"
    day = funnel.today_wita(time.time()).strftime("%Y%m%d")
    report = funnel.read(redis, "r5101011006", [day])  # the site's desa
    assert (report.totals["complaint"], report.totals["delivered"], report.totals["answered"]) == (2, 2, 1)
    assert report.uniques["delivered"] == 1  # one resident, one device
    province = funnel.read(redis, "p51", [day])
    assert province.by_child["5101"]["answered"] == 1
    assert province.by_type["desa_adat"]["delivered"] == 2  # the site's type, from the registry
