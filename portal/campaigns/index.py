"""The published campaigns in process memory, indexed so that choosing one costs O(1).

At publication the studio writes one snapshot of every live version (store.py). Each
process loads it when its version counter changes (checked at most once a second, like
the site registry) and files every entry under the keys it targets: one site, or a
region code at any level combined with a site type (``*`` for any). A request looks up
the site's own key and its four region levels with its type and ``*`` — ten dictionary
lookups, whatever the number of campaigns or sites — merges the pre-sorted lists
(emergency first, then priority) once per site and snapshot, and walks that list until
an entry is on schedule and under its cap.
"""
from __future__ import annotations

import hashlib
import heapq
import json
import logging
import threading
import time

import redis

from .schedule import Schedule, site_area_keys
from .store import snapshot_keys

log = logging.getLogger(__name__)
CHECK_INTERVAL = 1.0
PER_SITE_LIMIT = 50_000  # merged lists kept per process (the registry has ~2,300 sites)


class Entry:
    """One live version as selection sees it."""

    __slots__ = ("id", "version", "publish_at", "schedule", "order", "cap", "variants", "total", "key")

    def __init__(self, data: dict):
        self.id = data["id"]
        self.version = int(data["version"])
        self.publish_at = float(data["publish_at"])
        self.schedule = Schedule(**data["schedule"])
        self.cap = int(data["cap"])
        self.variants = [(v["key"], int(v["weight"]), v["source"]) for v in data["variants"] if int(v["weight"]) > 0]
        self.total = sum(w for _, w, _ in self.variants)
        # Lower sorts first: emergencies, then priority, then the newer publication.
        self.order = (0 if data["emergency"] else 1, -int(data["priority"]), -self.publish_at, self.id)
        self.key = f"c:{self.id}:{self.version}"

    def __lt__(self, other: "Entry") -> bool:
        return self.order < other.order

    def variant_for(self, device: str) -> str:
        """The variant a device sees, the same one every time (hash of device and campaign)."""
        if len(self.variants) == 1 or not self.total:
            return self.variants[0][0] if self.variants else "A"
        point = int(hashlib.sha256(f"{device}|{self.id}".encode()).hexdigest()[:8], 16) % self.total
        for key, weight, _ in self.variants:
            if point < weight:
                return key
            point -= weight
        return self.variants[-1][0]

    def source(self, variant: str) -> str | None:
        """The template source of *variant*, None if it is not live."""
        for key, _, source in self.variants:
            if key == variant:
                return source
        return None


def build(entries: list[dict]) -> tuple[dict, dict]:
    """``(lookup, by_key)``: target key -> entries sorted for selection, and campaign key -> entry."""
    lookup: dict[tuple, list[Entry]] = {}
    by_key: dict[str, Entry] = {}
    for data in entries:
        entry = Entry(data)
        if not entry.variants:
            continue
        by_key[entry.key] = entry
        t = data["targeting"]
        targets = [("s", site_id) for site_id in t["sites"]]
        codes = t["regions"] or ([] if t["sites"] else [_dotted(data["region"])])
        for code in codes:
            for kind in t["types"] or ["*"]:
                targets.append(("a", code, kind))
        for target in targets:
            lookup.setdefault(target, []).append(entry)
    for found in lookup.values():
        found.sort()
    return lookup, by_key


def versions_by_campaign(by_key: dict) -> dict[str, list[Entry]]:
    """Each campaign's live entries, the latest publication time first."""
    found: dict[str, list[Entry]] = {}
    for entry in by_key.values():
        found.setdefault(entry.id, []).append(entry)
    for entries in found.values():
        entries.sort(key=lambda e: -e.publish_at)
    return found


def _dotted(code: str) -> str:
    from .schedule import dotted

    return dotted(code)


class CampaignIndex:
    """The snapshot held in memory, refreshed when its version counter changes."""

    def __init__(self, province: str):
        self.province = province
        self._snapshot_key, self._version_key = snapshot_keys(province)
        self._version: bytes | None = None
        self._checked = 0.0
        self.lookup: dict[tuple, list[Entry]] = {}
        self.by_key: dict[str, Entry] = {}
        self.versions_of: dict[str, list[Entry]] = {}
        self.templates: dict[str, object] = {}
        self.per_site: dict[tuple, tuple] = {}  # a site's merged candidate list, built on its first request
        self._lock = threading.Lock()

    def refresh(self, client: redis.Redis | None) -> None:
        """Reload the snapshot if it changed; keep the last copy when Redis fails."""
        now = time.monotonic()
        if client is None or now - self._checked < CHECK_INTERVAL:
            return
        with self._lock:
            if now - self._checked < CHECK_INTERVAL:
                return
            try:
                version = client.get(self._version_key)
                if version != self._version:
                    raw = client.get(self._snapshot_key)
                    self.lookup, self.by_key = build(json.loads(raw) if raw else [])
                    self.versions_of = versions_by_campaign(self.by_key)
                    self.templates = {}
                    self.per_site = {}
                    self._version = version
            except (redis.RedisError, OSError, ValueError) as error:
                log.warning("campaign snapshot not refreshed: %s", type(error).__name__)
                if isinstance(error, (redis.ConnectionError, redis.TimeoutError, OSError)):
                    from ..redis import report_down

                    report_down()  # the rest of the request skips Redis
            self._checked = now

    def invalidate(self) -> None:
        """Check the version on the next request."""
        self._checked = 0.0

    def due_version(self, campaign_id: str, now: float) -> "Entry | None":
        """The version of a campaign live at *now*: the newest whose publication time has come."""
        for entry in self.versions_of.get(campaign_id, ()):
            if entry.publish_at <= now:
                return entry
        return None

    def candidates(self, site):
        """Entries that target *site*, best first (lazily merged, each once)."""
        lists = [self.lookup.get(("s", site.site_id), ())]
        for code in site_area_keys(site):
            lists.append(self.lookup.get(("a", code, site.type), ()))
            lists.append(self.lookup.get(("a", code, "*"), ()))
        seen = set()
        for entry in heapq.merge(*[x for x in lists if x]):
            if entry.key not in seen:
                seen.add(entry.key)
                yield entry

    def choose(self, site, device: str, now: float, *, under_cap) -> str | None:
        """The campaign key (``c:<id>:<version>:<variant>``) for *site* at *now*, or None."""
        if site is None or not self.lookup:
            return None
        place = (site.site_id, site.desa_kode, site.type)
        ordered = self.per_site.get(place)
        if ordered is None:  # first request from this site since the snapshot changed
            if len(self.per_site) >= PER_SITE_LIMIT:
                self.per_site.clear()
            ordered = self.per_site[place] = tuple(self.candidates(site))
        for entry in ordered:
            if self.due_version(entry.id, now) is not entry:
                continue  # a scheduled publication not yet due, or a version it has replaced
            if not entry.schedule.active(now):
                continue
            if entry.cap and not under_cap(entry, device, now):
                continue
            return f"{entry.key}:{entry.variant_for(device)}"
        return None
