"""Command-line tools: ``flask --app portal sites import``, ``spool replay``, ``keys new``.

Also the CLI's boundary for errors: a missing setting or an unreachable Redis is one line that
says what to do, never a traceback.
"""
from __future__ import annotations

import functools
import sys
import time
from typing import NoReturn
from urllib.parse import urlsplit

import click
from cryptography.fernet import Fernet
from flask import Flask, current_app

from .held_cli import held_cli
from .redis import DOWN_ERRORS, raw_client
from .sites import ImportError_, import_sites, parse_csv

from .cli_groups import keys_cli, sites_cli, spool_cli


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
    from . import site_admin_cli  # noqa: F401  (adds sites set/show/secret/config, keys rotate to the groups)


def running() -> bool:
    """True while a click command line (``flask --app portal …``) is being handled."""
    return click.get_current_context(silent=True) is not None


def note(message: str) -> None:
    """Tell the operator something on stderr, keeping stdout for the command's output."""
    click.echo(message, err=True)


def refuse(message: str) -> NoReturn:
    """Stop: one line under the CLI, a RuntimeError elsewhere (gunicorn logs it and exits)."""
    if not running():
        raise RuntimeError(message)
    click.echo(f"Error: {message}", err=True)
    # Not a ClickException: Flask's CLI prints a traceback for any error raised while it
    # loads the app (e.g. for --help), except NoAppException, which it follows with a
    # misleading "No such command". SystemExit passes through both.
    sys.exit(1)


def guard_commands(group: click.Group) -> None:
    """Make every command of *group* (recursively) end with one line when Redis is unreachable."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            guard_commands(command)
        elif command.callback is not None and not getattr(command.callback, "_redis_guarded", False):
            command.callback = _redis_guarded(command.callback)


def _redis_guarded(callback):
    @functools.wraps(callback)
    def run(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except DOWN_ERRORS as error:
            where = _redis_location(current_app.config.get("REDIS_URL", ""))
            raise click.ClickException(
                f"Redis at {where} is unreachable ({type(error).__name__}): start it or fix PORTAL_REDIS_URL "
                "(in a development checkout, unset it to use make run's embedded Redis)") from None

    run._redis_guarded = True
    return run


def _redis_location(url: str) -> str:
    """Where the Redis URL points, without any password in it."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname}:{parts.port or 6379}"
