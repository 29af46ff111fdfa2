"""Per-site settings and secrets: changed in one transaction, secrets sealed at rest.

A site's secrets (faskey, uamsecret, controller and REST accounts, heartbeat
key, the MikroTik shared password) are one JSON dict sealed with
:mod:`portal.crypto` in ``Site.secrets``. They are decrypted only when a grant
needs them, and shown back to operators only masked (:func:`mask`).
"""
from __future__ import annotations

import logging
import re
from typing import Callable

import redis

from hotspot_hooks.guards import parse_router_hosts

from . import key_rotation
from .crypto import Crypto, InvalidToken
from .sites import RECORDS, VERSION, Site

log = logging.getLogger(__name__)

#: Secret names an operator may set, and what each is for.
SECRET_NAMES = {
    "faskey": "openNDS FAS key (faskey on the router)",
    "uamsecret": "CoovaChilli uamsecret",
    "controller_username": "UniFi admin / Omada hotspot operator name",
    "controller_password": "UniFi admin / Omada hotspot operator password",
    "rest_username": "MikroTik REST router user (login_mode=rest)",
    "rest_password": "MikroTik REST router password (login_mode=rest)",
    "password": "MikroTik shared hotspot account password (login_mode=account)",
    "heartbeat_key": "key the gateway's heartbeat is signed with",
    "omada_client_id": "Omada Open API application client id (checks that a device is connected)",
    "omada_client_secret": "Omada Open API application client secret",
    "authmon_key": "openNDS authmon key: the last part of the site's faspath (16+ letters, digits, - or _)",
}
INT_SETTINGS = ("minutes", "download_kbps", "upload_kbps", "quota_mb")
STR_SETTINGS = ("login_mode", "username")
_OPTION = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


class SiteAdminError(Exception):
    """An operator's request cannot be applied; the message says why."""


def mask(value: str) -> str:
    """Show a secret as ``ab…(32 chars)``; short secrets show no characters at all."""
    shown = value[:2] if len(value) >= 12 else ""
    return f"{shown}…({len(value)} chars)"


def open_secrets(crypto: Crypto, site: Site | None) -> dict:
    """Decrypt a site's secrets; ``{}`` (and an operator log line) when they cannot be."""
    if site is None or not site.secrets:
        return {}
    try:
        return crypto.unseal(site.secrets)
    except (InvalidToken, ValueError):
        log.error("secrets of site %s cannot be decrypted: PORTAL_DATA_KEYS lacks the key they were "
                  "sealed with; put it back (after the new one) or set the secrets again", site.site_id)
        return {}


def update_site(client: redis.Redis, site_id: str, change: Callable[[Site], Site]) -> Site:
    """Apply *change* to one site record atomically and bump the registry version."""
    with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(RECORDS)
                raw = pipe.hget(RECORDS, site_id)
                if raw is None:
                    raise SiteAdminError(f"no site {site_id}")
                site = change(Site.from_json(raw))
                pipe.multi()
                pipe.hset(RECORDS, site_id, site.to_json())
                pipe.incr(VERSION)
                pipe.execute()
                return site
            except redis.WatchError:
                continue


def _with_secrets(crypto: Crypto, site: Site, secrets: dict) -> Site:
    sealed = crypto.seal(secrets) if secrets else ""
    return Site(**{**site.__dict__, "secrets": sealed})


def _readable_secrets(crypto: Crypto, site: Site) -> dict:
    if not site.secrets:
        return {}
    try:
        return crypto.unseal(site.secrets)
    except InvalidToken:
        raise SiteAdminError(f"secrets of {site.site_id} cannot be decrypted with PORTAL_DATA_KEYS") from None


def set_secret(client: redis.Redis, crypto: Crypto, site_id: str, name: str, value: str) -> Site:
    """Seal *value* as the site's secret *name*."""
    if name not in SECRET_NAMES:
        raise SiteAdminError(f"unknown secret {name!r}; known: {', '.join(SECRET_NAMES)}")
    if not value:
        raise SiteAdminError("empty value: use `sites secret unset` to remove a secret")
    return update_site(client, site_id, lambda site: _with_secrets(
        crypto, site, {**_readable_secrets(crypto, site), name: value}))


def unset_secret(client: redis.Redis, crypto: Crypto, site_id: str, name: str) -> Site:
    """Remove the site's secret *name*."""

    def change(site: Site) -> Site:
        secrets = _readable_secrets(crypto, site)
        secrets.pop(name, None)
        return _with_secrets(crypto, site, secrets)

    return update_site(client, site_id, change)


def masked_secrets(crypto: Crypto, site: Site) -> dict[str, str]:
    """The site's secrets, each masked."""
    return {name: mask(str(value)) for name, value in sorted(_readable_secrets(crypto, site).items())}


def set_setting(client: redis.Redis, site_id: str, key: str, value: str) -> Site:
    """Set one grant setting or vendor option of a site; an empty value removes it."""
    if key in SECRET_NAMES:
        raise SiteAdminError(f"{key} is a secret: use `flask --app portal sites secret set {site_id} {key}`")
    if key in INT_SETTINGS and value:
        if not value.isdigit():
            raise SiteAdminError(f"{key} must be a whole number")
    elif key not in STR_SETTINGS and not _OPTION.match(key):
        raise SiteAdminError(f"{key!r} is not a valid option name (lower-case letters, digits, _)")
    if key == "router_hosts" and value and parse_router_hosts(value)[1]:
        raise SiteAdminError("router_hosts: not an address, network or host name: "
                             + ", ".join(parse_router_hosts(value)[1]))

    def change(site: Site) -> Site:
        settings = {**site.settings, "options": dict(site.settings.get("options", {}))}
        target = settings if key in INT_SETTINGS + STR_SETTINGS else settings["options"]
        if value:
            target[key] = int(value) if key in INT_SETTINGS else value
        else:
            target.pop(key, None)
        if not settings["options"]:
            settings.pop("options")
        return Site(**{**site.__dict__, "settings": settings})

    return update_site(client, site_id, change)


@key_rotation.rotator("site secrets")
def rotate_site_secrets(client: redis.Redis, crypto: Crypto) -> int:
    """Re-encrypt every site's secrets under the newest data key."""
    with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(RECORDS)
                changed = {}
                for site_id, raw in pipe.hgetall(RECORDS).items():
                    site = Site.from_json(raw)
                    if site.secrets:
                        rotated = Site(**{**site.__dict__, "secrets": crypto.rotate(site.secrets)})
                        changed[site_id] = rotated.to_json()
                pipe.multi()
                if changed:
                    pipe.hset(RECORDS, mapping=changed)
                pipe.incr(VERSION)
                pipe.execute()
                return len(changed)
            except redis.WatchError:
                continue
