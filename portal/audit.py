"""The staff audit log: one append-only Redis stream per province.

Every staff action (sign-in, edits, publication, rollback, exports, secret changes,
releases, data-subject requests) is one entry. Entries name the staff account and
the object acted on, never personal data or complaint text: ``details`` holds
identifiers and counts only. The stream carries the province hash tag, like the
complaint stream, so Redis Cluster keeps it on one shard.
"""
from __future__ import annotations

import csv
import io
import json
import time

FIELDS = ("at", "actor", "role", "action", "target", "region", "details")


def key(province: str) -> str:
    """The audit stream of *province*."""
    return f"portal:{{p{province}}}:audit"


def record(client, province: str, *, actor: str, role: str, action: str, target: str = "",
           region: str = "", at: float | None = None, **details) -> str:
    """Append one entry and return its stream id. Raises when Redis does: no action goes unlogged."""
    entry = {
        "at": f"{at if at is not None else time.time():.3f}",
        "actor": actor,
        "role": role,
        "action": action,
        "target": target,
        "region": region,
        "details": json.dumps(details, sort_keys=True, default=str),
    }
    entry_id = client.xadd(key(province), entry)
    return entry_id.decode() if isinstance(entry_id, bytes) else entry_id


def entries(client, province: str, *, since: float | None = None, until: float | None = None,
            actor: str | None = None, action: str | None = None, limit: int = 500) -> list[dict]:
    """Newest first, optionally between two unix times and for one actor or action."""
    high = f"{int(until * 1000)}" if until is not None else "+"
    low = f"{int(since * 1000)}" if since is not None else "-"
    found: list[dict] = []
    cursor = high
    while len(found) < limit:
        batch = client.xrevrange(key(province), max=cursor, min=low, count=max(limit, 100))
        if not batch:
            break
        for entry_id, fields in batch:
            entry = {_text(k): _text(v) for k, v in fields.items()}
            entry["id"] = _text(entry_id)
            entry["details"] = json.loads(entry.get("details") or "{}")
            if (actor is None or entry.get("actor") == actor) and (action is None or entry.get("action") == action):
                found.append(entry)
                if len(found) >= limit:
                    break
        last = _text(batch[-1][0])
        cursor = "(" + last  # exclusive: the next page starts below the last id seen
        if len(batch) < max(limit, 100):
            break
    return found


def to_csv(rows: list[dict]) -> str:
    """The entries as CSV with one column per field (details as JSON)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(("id",) + FIELDS)
    for row in rows:
        writer.writerow([row.get("id", "")] + [
            json.dumps(row.get(f), sort_keys=True) if f == "details" else row.get(f, "") for f in FIELDS])
    return out.getvalue()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
