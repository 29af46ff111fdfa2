"""``flask results ...``: the fleet check (alerts), retention, data-subject requests."""
from __future__ import annotations

import json
import time

import click
from flask import current_app
from flask.cli import AppGroup

from ..redis import raw_client
from . import alerts, fleet

results_cli = AppGroup("results", help="Results and fleet health: fleet alerts, retention, data-subject requests.")


@results_cli.command("fleet-check")
def fleet_check() -> None:
    """Compare heartbeats with the alerted state; send offline/back alerts (run every minute by a timer)."""
    config = current_app.config
    province = config["PROVINCE"]
    client = raw_client()
    lock = alerts.LOCK.format(prov=province)
    # Two nodes' timers may fire together: one check at a time, so no alert goes out twice.
    if not client.set(lock, "1", nx=True, ex=300):
        click.echo("another fleet check is running")
        return
    try:
        sites = current_app.extensions["portal_sites"].all(client)
        health = fleet.health(client, sites, stale=float(config["FLEET_STALE_SECONDS"]),
                              offline=float(config["FLEET_OFFLINE_SECONDS"]))
        due = alerts.check(client, province, health, hold=float(config["FLEET_HOLD_DOWN_SECONDS"]))
        sent = alerts.notify(config, due)
    finally:
        client.delete(lock)
    offline = sum(1 for h in health if h.state == "offline")
    click.echo(json.dumps({"sites": len(health), "offline": offline, "alerts": len(due), **sent,
                           "at": round(time.time())}))
