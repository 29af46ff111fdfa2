"""RADIUS login mode: one-time credentials for gateways that ask FreeRADIUS who may log in.

When a site's settings say ``login_mode = "radius"``, the grant issues a random
user name and password, kept in Redis for ``RADIUS_CREDENTIAL_TTL`` seconds and
bound to the portal session's device and site. The browser's login form carries
them to the gateway (the adapter's ``account`` mode), the gateway asks
FreeRADIUS, and FreeRADIUS asks :mod:`portal.radius_api`.

Keys (each command touches one key, so any of them may live on any Cluster shard):

- ``portal:radius:cred:<user>``  string  JSON credential: the pseudonymous device id (never
  the raw MAC: that lives only in the portal session), TTL at most ``SESSION_TTL``; deleted
  by its first successful login (single use)
- ``portal:radius:acct:<user>``  hash    the login's accounting: pseudonymous device id,
  site, session time, octets; no MAC, no IP
"""
from __future__ import annotations

import dataclasses
import json
import secrets
import time
from dataclasses import dataclass

from flask import current_app

from hotspot_hooks import HookError, SiteSettings

from .redis import DOWN_ERRORS, get_redis, report_failure
from .sessions import PortalSession

CREDENTIAL = "portal:radius:cred:{}"
ACCOUNTING = "portal:radius:acct:{}"
LOGIN_MODE = "radius"
GIGAWORD = 1 << 32

# Single-key script: a record is only created at login, so late or replayed accounting
# for an unknown user cannot create keys without a TTL, and a late interim never
# overwrites the final numbers of a stop.
_RECORD_ACCOUNTING = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'status') == 'stop' and ARGV[1] ~= 'stop' then return 1 end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if ARGV[1] == 'stop' then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2])) end
return 1
"""


class CredentialError(HookError):
    """No credential could be stored (Redis is down): the gateway could not verify it."""


@dataclass(frozen=True)
class Credential:
    """One portal-issued RADIUS login and what the portal knew when issuing it."""

    username: str
    password: str
    site_id: str
    vendor: str
    device: str
    minutes: int
    download_kbps: int = 0
    upload_kbps: int = 0
    quota_mb: int = 0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> "Credential":
        # Known fields only: a credential stored by an older release (with its "mac") still loads.
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in json.loads(text).items() if k in known})


def credential_ttl() -> int:
    """Seconds a credential lives: the configured value, never longer than a portal session."""
    cfg = current_app.config
    return max(1, min(int(cfg["RADIUS_CREDENTIAL_TTL"]), int(cfg["SESSION_TTL"])))


def issue(session: PortalSession, settings: SiteSettings) -> Credential:
    """Store a fresh single-use credential for *session*; raise CredentialError if Redis is down."""
    if not session.arrival.client_mac:
        # The binding to the device is what makes a leaked credential useless elsewhere.
        raise CredentialError("radius login needs the client's MAC: the gateway sent none")
    credential = Credential(
        # Hex only: survives every vendor's form encoding and md5.js's Latin-1 CHAP.
        username="p" + secrets.token_hex(8),
        password=secrets.token_hex(12),
        site_id=session.site_id,
        vendor=session.arrival.vendor,
        device=session.device,
        minutes=settings.minutes,
        download_kbps=settings.download_kbps,
        upload_kbps=settings.upload_kbps,
        quota_mb=settings.quota_mb,
    )
    try:
        get_redis().set(CREDENTIAL.format(credential.username), credential.to_json(),
                        ex=credential_ttl(), nx=True)
    except DOWN_ERRORS as error:
        report_failure()
        raise CredentialError("could not store the radius credential: Redis is unavailable") from error
    return credential


def login_settings(session: PortalSession, settings: SiteSettings) -> SiteSettings:
    """Issue a credential and return *settings* in ``account`` mode carrying it, for the adapter."""
    credential = issue(session, settings)
    return dataclasses.replace(
        settings,
        login_mode="account",
        username=credential.username,
        secrets={**settings.secrets, "password": credential.password},
    )


def lookup(client, username: str) -> Credential | None:
    """Return the unused, unexpired credential of *username*, or None."""
    if not username or len(username) > 64:
        return None
    raw = client.get(CREDENTIAL.format(username))
    return Credential.from_json(raw) if raw else None


def claim(client, username: str) -> Credential | None:
    """Use up the credential of *username* atomically; None if it was already used or expired."""
    if not username or len(username) > 64:
        return None
    raw = client.getdel(CREDENTIAL.format(username))
    return Credential.from_json(raw) if raw else None


def open_accounting(client, credential: Credential) -> None:
    """Create the accounting record of a login that just succeeded (no MAC, no IP)."""
    key = ACCOUNTING.format(credential.username)
    now = f"{time.time():.3f}"
    ttl = credential.minutes * 60 + int(current_app.config["RADIUS_ACCOUNTING_TTL"])
    with client.pipeline(transaction=False) as pipe:
        pipe.hset(key, mapping={
            "device": credential.device,
            "site": credential.site_id or "unknown",
            "vendor": credential.vendor,
            "granted": now,
            "updated": now,
            "status": "granted",
        })
        pipe.expire(key, ttl)
        pipe.execute()


def record_accounting(client, username: str, status: str, fields: dict[str, str]) -> bool:
    """Store one accounting update; False when no login of ours has that user name."""
    if not username or len(username) > 64:
        return False
    args = [status, int(current_app.config["RADIUS_ACCOUNTING_TTL"]), "status", status,
            "updated", f"{time.time():.3f}"]
    for name, value in fields.items():
        args += [name, value]
    script = client.register_script(_RECORD_ACCOUNTING)
    return bool(script(keys=[ACCOUNTING.format(username)], args=args))


def read_accounting(client, username: str) -> dict[str, str]:
    """Return the accounting record of *username* as a dict of strings (empty if none)."""
    return {k.decode(): v.decode() for k, v in client.hgetall(ACCOUNTING.format(username)).items()}


def _split_gigawords(octets: int) -> tuple[int, int]:
    """RADIUS integers are 32 bits: larger byte counts go in a second *-Gigawords attribute."""
    return octets % GIGAWORD, octets // GIGAWORD


def reply_attributes(credential: Credential, *, interim_interval: int = 0) -> dict[str, int | str]:
    """The Access-Accept attributes of *credential* for its gateway vendor (rlm_rest names)."""
    reply: dict[str, int | str] = {}
    if credential.minutes > 0:
        reply["reply:Session-Timeout"] = credential.minutes * 60
    if interim_interval > 0:
        reply["reply:Acct-Interim-Interval"] = interim_interval
    up, down, quota = credential.upload_kbps, credential.download_kbps, credential.quota_mb * 1024 * 1024
    if credential.vendor == "mikrotik":
        if up > 0 or down > 0:
            # rx/tx from the router's side: rx is what the client sends (upload). 0 = unlimited.
            reply["reply:Mikrotik-Rate-Limit"] = f"{_mikrotik_rate(up)}/{_mikrotik_rate(down)}"
        if quota > 0:
            low, high = _split_gigawords(quota)
            reply["reply:Mikrotik-Total-Limit"] = low
            if high:
                reply["reply:Mikrotik-Total-Limit-Gigawords"] = high
        return reply
    # CoovaChilli and the other WISPr-speaking gateways (pfSense...): bit/s.
    if up > 0:
        reply["reply:WISPr-Bandwidth-Max-Up"] = up * 1000
    if down > 0:
        reply["reply:WISPr-Bandwidth-Max-Down"] = down * 1000
    if quota > 0 and credential.vendor == "coovachilli":
        low, high = _split_gigawords(quota)
        reply["reply:CoovaChilli-Max-Total-Octets"] = low
        if high:
            reply["reply:CoovaChilli-Max-Total-Gigawords"] = high
    return reply


def _mikrotik_rate(kbps: int) -> str:
    return f"{kbps}k" if kbps > 0 else "0"
