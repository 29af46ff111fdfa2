"""Campaigns in Redis: working copies, immutable published versions, and what is live.

Keys (all under the province hash tag, so a publication is one MULTI on Redis Cluster):

- ``portal:{p51}:cmp:work``          hash  campaign id -> JSON working copy (draft / in review)
- ``portal:{p51}:cmp:versions:<id>`` list  JSON published versions, appended only (1, 2, …)
- ``portal:{p51}:cmp:live``          hash  campaign id -> JSON ``[[publish_at, version], …]``
- ``portal:{p51}:cmp:snapshot``      string JSON of every live version, what selection reads
- ``portal:{p51}:cmp:snapver``       int   bumped with each new snapshot
- ``portal:{p51}:cmp:img:<id>``      string a re-encoded campaign image

A version is never changed once written; rollback points ``live`` at an earlier one.
Scheduled publication is a ``live`` entry whose ``publish_at`` lies ahead: selection
switches over by itself when the time comes, no job has to run.
"""
from __future__ import annotations

import json
import time

import redis

from .model import live_variants
from .render import template_source


def _k(province: str, name: str) -> str:
    return f"portal:{{p{province}}}:cmp:{name}"


def load(client, province: str, campaign_id: str) -> dict | None:
    """The working copy of a campaign, or None."""
    raw = client.hget(_k(province, "work"), campaign_id)
    return json.loads(raw) if raw else None


def all_campaigns(client, province: str) -> list[dict]:
    """Every working copy (the studio's list; not a request path)."""
    return [json.loads(v) for v in client.hgetall(_k(province, "work")).values()]


def save(client, province: str, campaign: dict) -> None:
    """Store a working copy."""
    client.hset(_k(province, "work"), campaign["id"], json.dumps(campaign, ensure_ascii=False))


def versions(client, province: str, campaign_id: str) -> list[dict]:
    """Every published version of a campaign, oldest first."""
    return [json.loads(v) for v in client.lrange(_k(province, f"versions:{campaign_id}"), 0, -1)]


def version(client, province: str, campaign_id: str, number: int) -> dict | None:
    """One published version (numbered from 1)."""
    if number < 1:
        return None
    raw = client.lindex(_k(province, f"versions:{campaign_id}"), number - 1)
    return json.loads(raw) if raw else None


def live_entries(client, province: str, campaign_id: str) -> list[list]:
    """``[[publish_at, version], …]`` newest first; empty when withdrawn."""
    raw = client.hget(_k(province, "live"), campaign_id)
    return json.loads(raw) if raw else []


def live_version(entries: list[list], now: float) -> int:
    """The version live at *now* (0 for none)."""
    for publish_at, number in sorted(entries, reverse=True):
        if publish_at <= now:
            return int(number)
    return 0


def publish(client, province: str, campaign: dict, *, by: str, reviewed_by: str,
            publish_at: float | None = None, rebuild: bool = True) -> int:
    """Freeze the working copy as a new version and make it live (now or at *publish_at*).

    ``rebuild=False`` leaves the snapshot to one ``rebuild_snapshot`` after a batch (bulk loads).
    """
    now = time.time()
    at = publish_at if publish_at and publish_at > now else now
    key = _k(province, f"versions:{campaign['id']}")
    record = {**campaign, "status": "published", "published_by": by, "reviewed_by": reviewed_by,
              "published_at": now, "publish_at": at}
    with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(key, _k(province, "live"))
                number = pipe.llen(key) + 1
                entries = live_entries(pipe, province, campaign["id"])
                current = live_version(entries, now)
                # A scheduled version keeps the current one live until its time comes.
                kept = [[a, n] for a, n in entries if a <= now and n == current][:1] if at > now else []
                record["version"] = number
                pipe.multi()
                pipe.rpush(key, json.dumps(record, ensure_ascii=False))
                pipe.hset(_k(province, "live"), campaign["id"], json.dumps([[at, number]] + kept))
                pipe.hset(_k(province, "work"), campaign["id"],
                          json.dumps({**campaign, "status": "published", "publish_at": at}, ensure_ascii=False))
                pipe.execute()
                break
            except redis.WatchError:
                continue
    if rebuild:
        rebuild_snapshot(client, province)
    return number


def set_live(client, province: str, campaign_id: str, number: int) -> None:
    """Make version *number* live now (rollback), or withdraw the campaign with 0."""
    if number:
        client.hset(_k(province, "live"), campaign_id, json.dumps([[time.time(), number]]))
    else:
        client.hdel(_k(province, "live"), campaign_id)
    rebuild_snapshot(client, province)


def save_image(client, province: str, image_id: str, jpeg: bytes) -> None:
    """Store a re-encoded campaign image under its content address."""
    client.set(_k(province, f"img:{image_id}"), jpeg)


def load_image(client, province: str, image_id: str) -> bytes | None:
    """A stored campaign image, or None."""
    return client.get(_k(province, f"img:{image_id}"))


def snapshot_entry(record: dict, publish_at: float) -> dict:
    """What selection needs of one live version: targeting, schedule and each variant's template."""
    return {
        "id": record["id"], "version": record["version"], "publish_at": publish_at,
        "region": record["region"], "targeting": record["targeting"], "schedule": record["schedule"],
        "priority": int(record["priority"]), "cap": int(record["cap"]), "emergency": bool(record["emergency"]),
        "variants": [{"key": v, "weight": int(record["weights"].get(v, 0)) if v != "A" or len(live_variants(record)) > 1
                      else 100, "source": template_source(record, v)} for v in live_variants(record)],
    }


def rebuild_snapshot(client, province: str) -> int:
    """Write the snapshot of every live version (run at publication time, never per request)."""
    entries = []
    for campaign_id, raw in client.hgetall(_k(province, "live")).items():
        campaign_id = campaign_id.decode()
        for publish_at, number in json.loads(raw):
            record = version(client, province, campaign_id, int(number))
            if record is not None:
                entries.append(snapshot_entry(record, publish_at))
    with client.pipeline(transaction=True) as pipe:
        pipe.set(_k(province, "snapshot"), json.dumps(entries, ensure_ascii=False))
        pipe.incr(_k(province, "snapver"))
        return pipe.execute()[1]


def snapshot_keys(province: str) -> tuple[str, str]:
    """The snapshot and its version counter."""
    return _k(province, "snapshot"), _k(province, "snapver")
