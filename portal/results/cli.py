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
        sent = alerts.deliver(client, province, config, due)
    finally:
        client.delete(lock)
    offline = sum(1 for h in health if h.state == "offline")
    click.echo(json.dumps({"sites": len(health), "offline": offline, "alerts": len(due), **sent,
                           "at": round(time.time())}))


def _channels():
    from ..delivery import settings as delivery_settings

    return delivery_settings.load(current_app).channels


@results_cli.command("retention")
def retention_run() -> None:
    """Remove raw events and personal data past their retention periods; print the counts (JSON)."""
    from ..delivery.channels import erase_copies
    from . import retention

    channels = _channels()
    counts = retention.run(raw_client(), current_app.config["PROVINCE"], current_app.config,
                           on_erase=lambda tracking: erase_copies(channels, tracking))
    click.echo(json.dumps(counts, sort_keys=True))


@results_cli.command("dsr")
@click.argument("action", type=click.Choice(["find", "export", "erase"]))
@click.option("--tracking", default="", help="A tracking number, e.g. K7Q2-MX9D-R.")
@click.option("--contact", default="", help="A phone number or e-mail address as the resident gave it.")
@click.option("--actor", required=True, help="Who handles the request (written to the audit log).")
@click.option("--yes", is_flag=True, help="Confirm an erase.")
def dsr_command(action: str, tracking: str, contact: str, actor: str, yes: bool) -> None:
    """A data-subject request: find, export (JSON, with the sealed parts opened) or erase."""
    from . import dsr_actions

    if action == "erase" and not yes:
        raise click.UsageError("erasing cannot be undone: add --yes")
    try:
        result = dsr_actions.handle(action, tracking=tracking, contact=contact, actor=actor, role="admin",
                                    via="cli", on_erase=_erase_copies_callback())
    except dsr_actions.NotFound as error:
        raise click.UsageError(str(error)) from None
    click.echo(json.dumps(result, sort_keys=True, ensure_ascii=False, indent=1))


def _erase_copies_callback():
    from ..delivery.channels import erase_copies

    channels = _channels()
    return lambda tracking: erase_copies(channels, tracking)
