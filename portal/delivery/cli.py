"""Operator commands: ``deliver``, ``complaints show|purge-expired``, ``deadletters …``, ``delivery stats``.

Nothing here prints a name, a contact or complaint text.
"""
from __future__ import annotations

import json
import os
import socket
from datetime import datetime, timedelta, timezone

import click
from flask import current_app
from flask.cli import AppGroup

from ..complaints import store
from ..crypto import get_crypto
from ..redis import client_for, raw_client
from ..tracking import normalize
from . import deadletters, metrics, retention, state
from . import settings as delivery_settings
from .channels import erase_copies

complaints_cli = AppGroup("complaints", help="Complaints: inspect (no personal data) and erase expired ones.")
dead_cli = AppGroup("deadletters", help="Complaints that could not be delivered.")
delivery_cli = AppGroup("delivery", help="The delivery queue.")
WITA = timezone(timedelta(hours=8))


def _province() -> str:
    return current_app.config["PROVINCE"]


def _when(stamp: str) -> str:
    try:
        return datetime.fromtimestamp(float(stamp), WITA).strftime("%Y-%m-%d %H:%M WITA")
    except (TypeError, ValueError):
        return "-"


def build_forwarder(app, consumer: str):
    """A Forwarder wired to *app*'s settings, with its own Redis connection for blocking reads."""
    from ..complaints.service import replay_spool
    from .worker import Forwarder

    config = delivery_settings.load(app)
    # The web pool's 0.5 s socket timeout would cut a blocking XREADGROUP short.
    # Through the one factory, so the worker follows a Sentinel failover (or a cluster) like the web.
    connection = client_for(app.config, timeout=config.block + 10)
    return Forwarder(connection=connection, crypto=get_crypto(), settings=config, province=app.config["PROVINCE"],
                     consumer=consumer, public_url=app.config["PUBLIC_URL"],
                     retention_days=app.config["RETENTION_DAYS"], replay=replay_spool,
                     spool_pending=app.extensions["portal_spool"].pending,
                     alive_file=os.path.join(app.config["VAR_DIR"], "worker.alive"))


@click.command("deliver")
@click.option("--consumer", default=lambda: f"{socket.gethostname()}-1", show_default="<hostname>-1",
              help="Stable, unique name of this worker in the consumer group.")
@click.option("--burst", is_flag=True, help="Exit once the queue is empty.")
def deliver(consumer: str, burst: bool) -> None:
    """Run the delivery worker (SIGTERM: finish the deliveries in flight, then exit)."""
    forwarder = build_forwarder(current_app._get_current_object(), consumer)
    if not forwarder.settings.channels:
        click.echo("no delivery channels configured (PORTAL_DELIVERY_CONFIG, PORTAL_OUTBOX_DIR): complaints wait "
                   "in the queue; the worker still replays the spool and erases expired data", err=True)
    handled = forwarder.run(burst=burst)
    click.echo(f"worker {consumer}: handled {handled} entr(ies)")


@complaints_cli.command("show")
@click.argument("number")
def complaints_show(number: str) -> None:
    """Show a complaint's status and delivery, without personal data or its text."""
    tracking = normalize(number)
    record = store.read(raw_client(), _province(), tracking) if tracking else None
    if record is None:
        raise click.ClickException(f"no complaint {number}")
    flags = [label for label, key in (("ANONIM", "anonim"), ("RAHASIA", "rahasia")) if record.get(key) == "1"]
    click.echo(f"{tracking}  {record.get('kind')}/{record.get('category')}  status={record.get('status')}  "
               f"flags={','.join(flags) or '-'}")
    click.echo(f"  place: {record.get('kabupaten_kode') or '-'} {record.get('desa') or ''}  site: {record.get('site_id')}")
    click.echo(f"  received: {_when(record.get('created_at'))}  delivered: {_when(record.get('delivered_at'))}")
    click.echo(f"  LAPOR!: {record.get('lapor_id') or '-'} {record.get('lapor_url') or ''}")
    identity = "hidden (anonim)" if "ANONIM" in flags else ("sealed" if record.get("sealed_contact") else "none given")
    click.echo(f"  identity: {identity}; text: {'sealed' if record.get('sealed_text') else 'erased'}")
    info = state.read_state(raw_client(), _province(), tracking)
    channels = {k[3:]: _when(v) for k, v in info.items() if k.startswith("ch:")}
    click.echo(f"  attempts: {info.get('attempts', 0)}  channels: {json.dumps(channels)}  "
               f"last error: {info.get('last_error') or '-'}")


@complaints_cli.command("purge-expired")
def complaints_purge_expired() -> None:
    """Erase personal data of complaints delivered more than PORTAL_RETENTION_DAYS ago."""
    channels = delivery_settings.load(current_app).channels
    count = retention.purge_expired(raw_client(), _province(), retention_days=current_app.config["RETENTION_DAYS"],
                                    on_erase=lambda tracking: erase_copies(channels, tracking))
    click.echo(f"erased personal data of {count} complaint(s)")


@dead_cli.command("list")
@click.option("--count", default=100, show_default=True)
def dead_list(count: int) -> None:
    """List dead letters: id, tracking number, channel, reason, attempts."""
    rows = deadletters.entries(raw_client(), _province(), count=count)
    for entry_id, f in rows:
        click.echo(f"{entry_id}  {f['tracking']}  {f['channel'] or '-'}  {f['reason']}  attempts={f['attempts']}  "
                   f"{_when(f['at'])}")
    click.echo(f"{len(rows)} dead letter(s)")


@dead_cli.command("show")
@click.argument("entry_id")
def dead_show(entry_id: str) -> None:
    """Inspect one dead letter and its complaint, without personal data."""
    fields = deadletters.get(raw_client(), _province(), entry_id)
    if fields is None:
        raise click.ClickException(f"no dead letter {entry_id}")
    for key in ("tracking", "channel", "reason", "code", "attempts"):
        click.echo(f"{key}: {fields.get(key) or '-'}")
    click.echo(f"at: {_when(fields.get('at'))}")
    click.get_current_context().invoke(complaints_show, number=fields["tracking"])


def _each(entry_ids: tuple[str, ...], every: bool) -> list[str]:
    if every:
        return [entry_id for entry_id, _ in deadletters.entries(raw_client(), _province(), count=100000)]
    if not entry_ids:
        raise click.UsageError("give dead-letter ids or --all")
    return list(entry_ids)


@dead_cli.command("retry")
@click.argument("entry_ids", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every dead letter.")
def dead_retry(entry_ids: tuple[str, ...], every: bool) -> None:
    """Queue dead letters again (channels that have them are not resent)."""
    done = [t for t in (deadletters.retry(raw_client(), _province(), i) for i in _each(entry_ids, every)) if t]
    click.echo(f"queued {len(done)} complaint(s) again")


@dead_cli.command("purge")
@click.argument("entry_ids", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every dead letter.")
def dead_purge(entry_ids: tuple[str, ...], every: bool) -> None:
    """Give up on dead letters; their personal data is erased after the retention period."""
    done = [t for t in (deadletters.purge(raw_client(), _province(), i) for i in _each(entry_ids, every)) if t]
    click.echo(f"purged {len(done)} dead letter(s)")


@delivery_cli.command("stats")
def delivery_stats() -> None:
    """Print queue depth and the oldest undelivered complaint's age (what /metrics exports)."""
    snap = metrics.snapshot(raw_client(), _province())
    click.echo("  ".join(f"{k}={v:.0f}" if isinstance(v, float) else f"{k}={v}" for k, v in snap.items()))


def init_app(app) -> None:
    """Register the delivery commands."""
    app.cli.add_command(deliver)
    app.cli.add_command(complaints_cli)
    app.cli.add_command(dead_cli)
    app.cli.add_command(delivery_cli)
