"""Impressions, complaints and grants, recorded for the results pages.

Each event goes to the stream ``portal:events`` (capped) and to a per-site,
per-day counter hash ``portal:stats:<site>:<yyyymmdd>`` whose fields are
``<event>:<campaign>:<lang>``. Events carry the pseudonymous device id, never
the MAC or IP. When Redis is down, events go to the local spool and are
counted when it comes back.
"""
from __future__ import annotations

import time

from flask import current_app

EVENTS = "portal:events"
STATS = "portal:stats:{}:{}"
STREAM_MAXLEN = 500_000
STATS_TTL = 400 * 86400
KINDS = ("impression", "complaint", "grant")
WITA = 8 * 3600  # Bali is UTC+8 all year


def make_event(kind: str, *, site_id: str, campaign: str, lang: str, device: str, at: float | None = None) -> dict:
    """Return one event as a flat dict of strings."""
    return {
        "kind": kind,
        "site": site_id or "unknown",
        "campaign": campaign or "",
        "lang": lang or "",
        "device": device or "",
        "at": f"{at or time.time():.3f}",
    }


def add_to(pipe, event: dict) -> None:
    """Queue the commands that record *event* on a pipeline."""
    day = time.strftime("%Y%m%d", time.gmtime(float(event["at"]) + WITA))
    stats = STATS.format(event["site"], day)
    pipe.xadd(EVENTS, event, maxlen=STREAM_MAXLEN, approximate=True)
    pipe.hincrby(stats, f"{event['kind']}:{event['campaign']}:{event['lang']}", 1)
    pipe.expire(stats, STATS_TTL)


def replay_event(client, event: dict) -> None:
    """Write a spooled event to Redis."""
    with client.pipeline(transaction=False) as pipe:
        add_to(pipe, event)
        pipe.execute()


def spool_event(event: dict) -> None:
    """Keep *event* locally while Redis is down."""
    current_app.extensions["portal_spool"].append("event", event)
