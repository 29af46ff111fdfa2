"""``flask --app portal staff create``: the first administrator (and any account) from the shell."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from .. import audit
from ..redis import raw_client
from . import accounts

staff_cli = AppGroup("staff", help="Studio staff accounts.")


@staff_cli.command("create")
@click.option("--username", prompt=True, help="lower-case sign-in name")
@click.option("--role", default="admin", show_default=True, type=click.Choice(accounts.ROLES))
@click.option("--region", default="51", show_default=True, help="Kemendagri code: 51 or a kabupaten/kota")
def staff_create(username: str, role: str, region: str) -> None:
    """Create a staff account and print its temporary password (changed at first sign-in)."""
    province = current_app.config["PROVINCE"]
    client = raw_client()
    try:
        record, password = accounts.create(client, province, username=username, role=role, region=region)
    except accounts.AccountError as error:
        raise click.ClickException(str(error)) from None
    audit.record(client, province, actor="cli", role="", action="staff.create", target=record["username"],
                 region=record["region"], new_role=role)
    click.echo(f"created {record['username']} ({role}, region {record['region']})")
    click.echo(f"temporary password: {password}")
