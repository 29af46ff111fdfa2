"""Gateway heartbeats: when each site's router was last heard from, and its reported load.

Keys (scale.md §1.3: an index instead of a keyspace scan):

- ``portal:hb:<site_id>``          hash  ``seen`` (unix time), ``load``, ``via``
- ``portal:hb:{p:<province>}:seen`` zset  site_id scored by last-seen time, for stale-site queries

A router reports through WiFiDog's ``/ping`` or through the signed heartbeat URL
``/gateway/heartbeat/<site_id>?sig=…`` that any scheduler (RouterOS ``/tool fetch``,
cron + curl) can call. The signature is HMAC-SHA256 under the site's
``heartbeat_key`` secret, either over ``heartbeat|<site_id>`` (a fixed URL for
routers that cannot compute HMACs) or over ``heartbeat|<site_id>|<t>|<load>`` with a
fresh unix time ``t`` (cannot be replayed).
"""
from __future__ import annotations

import hashlib
import hmac
import math
import time

HEARTBEAT = "portal:hb:{}"
INDEX = "portal:hb:{{p:{}}}:seen"
HEARTBEAT_TTL = 30 * 86400
#: How far a timed heartbeat's clock may be from ours, in seconds.
MAX_SKEW = 300


def signature(key: str, site_id: str, t: str = "", load: str = "") -> str:
    """Return the hex HMAC-SHA256 a heartbeat URL carries as ``sig``."""
    message = f"heartbeat|{site_id}" if not t else f"heartbeat|{site_id}|{t}|{load}"
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def clean_load(value: str | None) -> str:
    """Return a reported load average as a short decimal string, ``""`` if it is not one."""
    try:
        number = float((value or "").strip())
    except ValueError:
        return ""
    return f"{number:.2f}" if math.isfinite(number) and 0 <= number < 10_000 else ""


def record(client, *, province: str, site_id: str, load: str = "", via: str = "", now: float | None = None) -> None:
    """Store that *site_id* was heard from now, with its reported load."""
    now = time.time() if now is None else now
    with client.pipeline(transaction=False) as pipe:
        pipe.hset(HEARTBEAT.format(site_id), mapping={"seen": f"{now:.0f}", "load": load, "via": via})
        pipe.expire(HEARTBEAT.format(site_id), HEARTBEAT_TTL)
        pipe.zadd(INDEX.format(province), {site_id: now})
        pipe.execute()


def last_seen(client, site_id: str) -> dict:
    """Return ``{"seen", "load", "via"}`` of a site, empty if never heard from."""
    return {k.decode(): v.decode() for k, v in client.hgetall(HEARTBEAT.format(site_id)).items()}


def stale_sites(client, *, province: str, older_than: float, now: float | None = None) -> list[str]:
    """Return the sites last heard from more than *older_than* seconds ago, oldest first."""
    now = time.time() if now is None else now
    return [s.decode() for s in client.zrangebyscore(INDEX.format(province), "-inf", now - older_than)]
