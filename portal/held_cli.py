"""``flask --app portal held list|show|release|reject``: act on the review queue before the studio exists."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import click
from flask import current_app
from flask.cli import AppGroup

from .complaints import held, store
from .crypto import InvalidToken, get_crypto
from .redis import raw_client
from .tracking import display, normalize

held_cli = AppGroup("held", help="Complaints held for review (honeypot, fill time, quota).")
WITA = timezone(timedelta(hours=8))


def _province() -> str:
    return current_app.config["PROVINCE"]


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, WITA).strftime("%Y-%m-%d %H:%M WITA")


def _numbers(numbers: tuple[str, ...]) -> list[str]:
    """Canonical tracking numbers, or a usage error naming the first bad one."""
    canonical = []
    for number in numbers:
        tracking = normalize(number)
        if tracking is None:
            raise click.BadParameter(f"{number} is not a tracking number", param_hint="NUMBER")
        canonical.append(tracking)
    return canonical


@held_cli.command("list")
@click.option("--count", default=100, show_default=True, help="How many, oldest first.")
def held_list(count: int) -> None:
    """List held complaints, oldest first, without personal data."""
    client = raw_client()
    entries = held.list_held(client, _province(), limit=count)
    for entry in entries:
        click.echo(f"{display(entry.tracking)}  {_when(entry.held_at)}  {entry.reason or '-':<12}  "
                   f"site {entry.site_id or '-'}  {entry.kind}/{entry.category}")
    click.echo(f"{held.count_held(client, _province())} complaint(s) held")


@held_cli.command("show")
@click.argument("number")
def held_show(number: str) -> None:
    """Show what a reviewer needs of one held complaint: reason, place and text (never name or contact)."""
    (tracking,) = _numbers((number,))
    record = store.read(raw_client(), _province(), tracking)
    if record is None or record.get("status") != "held":
        raise click.ClickException(f"{display(tracking)} is not held")
    click.echo(f"{display(tracking)}  reason={record.get('held_reason')}  {record.get('kind')}/{record.get('category')}"
               f"  site {record.get('site_id')}  received {_when(float(record.get('created_at') or 0))}")
    click.echo(f"  place: {record.get('desa')}, {record.get('kecamatan')}, {record.get('kabupaten')}")
    try:
        text = get_crypto().unseal(record["sealed_text"]) if record.get("sealed_text") else {}
    except InvalidToken:
        raise click.ClickException("the text cannot be decrypted with PORTAL_DATA_KEYS") from None
    click.echo(f"  exact place: {text.get('place') or '-'}")
    click.echo("  text:")
    click.echo("    " + (text.get("body") or "(erased)").replace("\n", "\n    "))


@held_cli.command("release")
@click.argument("numbers", nargs=-1, required=True, metavar="NUMBER...")
def held_release(numbers: tuple[str, ...]) -> None:
    """Forward held complaints: each goes onto the delivery stream once, as a normal complaint."""
    _act(numbers, lambda client, tracking: held.release(client, _province(), tracking), "released")


@held_cli.command("reject")
@click.argument("numbers", nargs=-1, required=True, metavar="NUMBER...")
@click.option("--reason", required=True, help="Why (kept with the record, never shown to the public).")
def held_reject(numbers: tuple[str, ...], reason: str) -> None:
    """Reject held complaints with a reason: never forwarded; personal data erased after the retention period."""
    if not reason.strip():
        raise click.BadParameter("give a reason", param_hint="--reason")
    _act(numbers, lambda client, tracking: held.reject(client, _province(), tracking, reason), "rejected")


def _act(numbers: tuple[str, ...], move, verb: str) -> None:
    client = raw_client()
    missing = []
    for tracking in _numbers(numbers):
        if move(client, tracking):
            click.echo(f"{verb} {display(tracking)}")
        else:
            missing.append(display(tracking))
    if missing:
        raise click.ClickException(f"not held (already released or rejected, or unknown): {', '.join(missing)}")
