"""Command-line tools: ``flask --app portal sites import``, ``spool replay``, ``keys new``."""
from __future__ import annotations

import time

import click
from cryptography.fernet import Fernet
from flask import Flask, current_app
from flask.cli import AppGroup

from .held_cli import held_cli
from .redis import raw_client
from .sites import ImportError_, import_sites, parse_csv

sites_cli = AppGroup("sites", help="The site registry.")
spool_cli = AppGroup("spool", help="The local spool of writes made while Redis was down.")
keys_cli = AppGroup("keys", help="Secrets for the environment.")


@sites_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def sites_import(path: str) -> None:
    """Import or update sites from an operator spreadsheet (CSV); all rows or none."""
    started = time.monotonic()
    with open(path, encoding="utf-8-sig", newline="") as handle:
        text = handle.read()
    try:
        sites = parse_csv(text)
    except ImportError_ as error:
        for line, reason in error.errors:
            click.echo(f"{path}:{line}: {reason}", err=True)
        raise click.ClickException(f"{len(error.errors)} bad row(s); nothing was imported") from None
    added, updated = import_sites(raw_client(), sites)
    current_app.extensions["portal_sites"].invalidate()
    click.echo(f"imported {len(sites)} sites ({added} new, {updated} updated) "
               f"in {time.monotonic() - started:.2f} s")


@spool_cli.command("replay")
def spool_replay() -> None:
    """Move spooled complaints and events into Redis now."""
    from .complaints.service import replay_spool

    click.echo(f"replayed {replay_spool()} record(s)")


@keys_cli.command("new")
def keys_new() -> None:
    """Print fresh values for PORTAL_SECRET_KEY, PORTAL_DEVICE_KEY and PORTAL_DATA_KEYS."""
    import secrets

    click.echo(f"PORTAL_SECRET_KEY={secrets.token_urlsafe(32)}")
    click.echo(f"PORTAL_DEVICE_KEY={secrets.token_urlsafe(32)}")
    click.echo(f"PORTAL_DATA_KEYS={Fernet.generate_key().decode()}")


def init_app(app: Flask) -> None:
    """Register the command groups."""
    app.cli.add_command(sites_cli)
    app.cli.add_command(spool_cli)
    app.cli.add_command(keys_cli)
    app.cli.add_command(held_cli)  # the review queue of held complaints (issue 10)
    from . import site_admin_cli  # noqa: F401  (adds sites set/show/secret/config, keys rotate)
