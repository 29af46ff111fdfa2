"""Operator commands on one site: ``sites set``, ``sites show``, ``sites secret …``, ``sites config``, ``keys rotate``.

Secret values are read from stdin or a hidden prompt, never from the command
line (shell history, ``ps``), and are only ever printed masked.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager

import click
from flask import current_app
from flask.cli import AppGroup

from . import key_rotation
from .cli_groups import keys_cli, sites_cli
from .crypto import get_crypto
from .operator_kit import KitError, build_kit, render_text
from .redis import raw_client
from .site_secrets import SECRET_NAMES, SiteAdminError, masked_secrets, set_secret, set_setting, unset_secret
from .sites import RECORDS, Site


@contextmanager
def operator_errors():
    """Show a SiteAdminError as a one-line CLI error instead of a traceback."""
    try:
        yield
    except SiteAdminError as error:
        raise click.ClickException(str(error)) from None


secret_cli = AppGroup("secret", help="Per-site secrets, sealed at rest.")
sites_cli.add_command(secret_cli)


def _load(site_id: str) -> Site:
    raw = raw_client().hget(RECORDS, site_id)
    if raw is None:
        raise click.ClickException(f"no site {site_id}")
    return Site.from_json(raw)


def _done() -> None:
    current_app.extensions["portal_sites"].invalidate()


@sites_cli.command("set")
@click.argument("site_id")
@click.argument("pairs", nargs=-1, required=True)
def sites_set(site_id: str, pairs: tuple[str, ...]) -> None:
    """Set grant settings or vendor options: key=value (an empty value removes the key)."""
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.ClickException(f"{pair!r}: expected key=value")
        with operator_errors():
            set_setting(raw_client(), site_id, key.strip(), value.strip())
        click.echo(f"{site_id}: {key.strip()} {'set' if value.strip() else 'removed'}")
    _done()


@sites_cli.command("show")
@click.argument("site_id")
def sites_show(site_id: str) -> None:
    """Show a site's record, settings and masked secrets."""
    site = _load(site_id)
    click.echo(f"{site.site_id}: {site.name} ({site.gateway_vendor} {site.gateway_id})")
    for key, value in sorted(site.settings.items()):
        click.echo(f"  {key} = {value}")
    with operator_errors():
        secrets = masked_secrets(get_crypto(), site)
    for name, masked in secrets.items():
        click.echo(f"  secret {name} = {masked}")


@secret_cli.command("set")
@click.argument("site_id")
@click.argument("name", type=click.Choice(sorted(SECRET_NAMES)))
def secret_set(site_id: str, name: str) -> None:
    """Seal a secret read from stdin (or a hidden prompt on a terminal)."""
    if sys.stdin.isatty():
        value = click.prompt(f"{name} for {site_id}", hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.readline().rstrip("\r\n")
    with operator_errors():
        set_secret(raw_client(), get_crypto(), site_id, name, value)
    _done()
    click.echo(f"{site_id}: secret {name} set ({len(value)} chars)")


@secret_cli.command("unset")
@click.argument("site_id")
@click.argument("name")
def secret_unset(site_id: str, name: str) -> None:
    """Remove a secret from a site."""
    with operator_errors():
        unset_secret(raw_client(), get_crypto(), site_id, name)
    _done()
    click.echo(f"{site_id}: secret {name} removed")


@secret_cli.command("list")
@click.argument("site_id")
def secret_list(site_id: str) -> None:
    """List a site's secrets, masked."""
    with operator_errors():
        secrets = masked_secrets(get_crypto(), _load(site_id))
    for name, masked in secrets.items():
        click.echo(f"{name} = {masked}")


def kit_for(site_id: str) -> str:
    """The operator kit of a site as text (also for an admin UI's download)."""
    cfg = current_app.config
    return render_text(build_kit(_load(site_id), public_url=cfg["PUBLIC_URL"], lapor_url=cfg["LAPOR_URL"],
                                 minutes=cfg["DEFAULT_MINUTES"]))


@sites_cli.command("config")
@click.argument("site_id")
def sites_config(site_id: str) -> None:
    """Print the gateway configuration and steps for a site's vendor."""
    try:
        click.echo(kit_for(site_id), nl=False)
    except KitError as error:
        raise click.ClickException(str(error)) from None


@keys_cli.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every sealed record under the first key of PORTAL_DATA_KEYS."""
    counts = key_rotation.rotate_all(raw_client(), get_crypto())
    _done()
    for name, count in counts.items():
        click.echo(f"{name}: {count} re-encrypted")
    click.echo("done: the old keys may now be removed from PORTAL_DATA_KEYS")
