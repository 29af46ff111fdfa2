"""The site registry: which gateway belongs to which hotspot, village and settings.

Keys (one hash tag, so an import is one MULTI even on Redis Cluster):

- ``portal:{sites}:records``  hash  site_id -> JSON record
- ``portal:{sites}:by_gw``    hash  "<vendor>|<gateway_id>" -> site_id
- ``portal:{sites}:version``  int   bumped by every change; processes reload on change

Each process keeps the whole registry in memory (2,303 sites is ~1 MB) and
checks the version at most once per ``CHECK_INTERVAL`` seconds, so the
arrival path costs no extra round trip. If Redis is down the last loaded
copy keeps serving.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field

import redis

from hotspot_hooks import HOOKS, SiteSettings
from hotspot_hooks.guards import DEFAULT_ROUTER_HOSTS, UNKNOWN_ROUTER_HOSTS, parse_router_hosts
from hotspot_hooks.opennds import LEVEL_OPTION, split_node_suffix

from .regions import regions

log = logging.getLogger(__name__)

RECORDS = "portal:{sites}:records"
BY_GATEWAY = "portal:{sites}:by_gw"
VERSION = "portal:{sites}:version"
CHECK_INTERVAL = 1.0

COLUMNS = ("site_id", "name", "type", "kabupaten_kode", "kabupaten", "kecamatan_kode",
           "kecamatan", "desa_kode", "desa", "gateway_vendor", "gateway_id")
SITE_TYPES = ("desa_adat", "puskesmas", "fasilitas_umum", "kantor", "sekolah", "pasar")
_SITE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Site:
    """One hotspot site as the resident journey needs it."""

    site_id: str
    name: str
    type: str
    kabupaten_kode: str
    kabupaten: str
    kecamatan_kode: str
    kecamatan: str
    desa_kode: str
    desa: str
    gateway_vendor: str
    gateway_id: str
    settings: dict = field(default_factory=dict)
    secrets: str = ""  # sealed JSON of per-site secrets, decrypted only when granting

    def to_json(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> "Site":
        return cls(**json.loads(text))



def grant_settings(site: "Site | None", *, defaults: dict, secrets: dict | None = None) -> SiteSettings:
    """Return the grant settings of *site*: its own values over the deployment defaults."""
    merged = {**defaults, **(site.settings if site else {})}
    options = {k: str(v) for k, v in merged.get("options", {}).items()}
    if "opennds_level" in options:  # the name earlier operator kits wrote; openNDS calls it fas_secure_enabled
        options.setdefault(LEVEL_OPTION, options.pop("opennds_level"))
    return SiteSettings(
        minutes=int(merged.get("minutes", 60)),
        download_kbps=int(merged.get("download_kbps", 0)),
        upload_kbps=int(merged.get("upload_kbps", 0)),
        quota_mb=int(merged.get("quota_mb", 0)),
        login_mode=str(merged.get("login_mode", "")),
        username=str(merged.get("username", "")),
        options=options,
        secrets=secrets or {},
        router_hosts=router_hosts(site),
    )


def router_hosts(site: "Site | None") -> tuple[str, ...]:
    """Where *site*'s grants may go: its ``router_hosts`` option, else private, CGNAT and link-local.

    An unregistered gateway gets private addresses only.
    """
    if site is None:
        return UNKNOWN_ROUTER_HOSTS
    text = str(site.settings.get("options", {}).get("router_hosts", ""))
    if not text.strip():
        return DEFAULT_ROUTER_HOSTS
    entries, rejected = parse_router_hosts(text)
    if rejected:
        log.error("site %s: router_hosts entries ignored (not an address, network or host name): %s",
                  site.site_id, ", ".join(rejected))
    return entries


def gateway_key(vendor: str, gateway_id: str) -> str:
    """Index key of a gateway: vendor and id, the id compared case-insensitively."""
    return f"{vendor}|{gateway_id.strip().lower()}"


class ImportError_(Exception):
    """The file has bad rows; ``errors`` lists ``(line, reason)``. Nothing was imported."""

    def __init__(self, errors: list[tuple[int, str]]):
        super().__init__(f"{len(errors)} bad row(s)")
        self.errors = errors


def parse_csv(text: str) -> list[Site]:
    """Validate an operator spreadsheet (CSV) and return its sites, or raise ImportError_."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ImportError_([(1, f"missing column(s): {', '.join(missing)}")])
    known = regions()
    sites: list[Site] = []
    errors: list[tuple[int, str]] = []
    seen_ids: dict[str, int] = {}
    seen_gw: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        values = {c: (row.get(c) or "").strip() for c in COLUMNS}
        problems = _row_problems(values, known)
        if values["site_id"] in seen_ids:
            problems.append(f"site_id {values['site_id']} already on line {seen_ids[values['site_id']]}")
        gw = gateway_key(values["gateway_vendor"], values["gateway_id"])
        if values["gateway_id"] and gw in seen_gw:
            problems.append(f"gateway {values['gateway_id']} already on line {seen_gw[gw]}")
        if problems:
            errors.append((line, "; ".join(problems)))
            continue
        seen_ids[values["site_id"]] = line
        seen_gw[gw] = line
        sites.append(Site(**values))
    if errors:
        raise ImportError_(errors)
    return sites


def _row_problems(values: dict, known: dict) -> list[str]:
    problems = []
    if not _SITE_ID.match(values["site_id"]):
        problems.append("site_id must be 1-64 letters, digits, '.', '_' or '-'")
    if not values["name"] or len(values["name"]) > 200:
        problems.append("name is required (at most 200 characters)")
    if values["type"] not in SITE_TYPES:
        problems.append(f"type must be one of {', '.join(SITE_TYPES)}")
    if values["gateway_vendor"] not in HOOKS:
        problems.append(f"gateway_vendor must be one of {', '.join(sorted(HOOKS))}")
    if not values["gateway_id"] or len(values["gateway_id"]) > 128:
        problems.append("gateway_id is required (at most 128 characters)")
    for level, parent in (("kabupaten", None), ("kecamatan", "kabupaten"), ("desa", "kecamatan")):
        code = values[f"{level}_kode"]
        entry = known.get(code)
        if entry is None:
            problems.append(f"{level}_kode {code or '(empty)'} is not a Bali region code")
        elif parent and entry[2] != values[f"{parent}_kode"]:
            problems.append(f"{level}_kode {code} is not in {parent} {values[f'{parent}_kode']}")
    return problems


def import_sites(client: redis.Redis, sites: list[Site]) -> tuple[int, int]:
    """Write *sites* in one transaction, keeping settings and secrets of known sites.

    Returns ``(added, updated)``. Running the same file twice changes nothing.
    """
    with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(RECORDS, BY_GATEWAY)
                existing = {k.decode(): Site.from_json(v) for k, v in pipe.hgetall(RECORDS).items()}
                records, index, stale = {}, {}, []
                for site in sites:
                    old = existing.get(site.site_id)
                    if old:
                        site = Site(**{**site.__dict__, "settings": old.settings, "secrets": old.secrets})
                        if gateway_key(old.gateway_vendor, old.gateway_id) != gateway_key(site.gateway_vendor, site.gateway_id):
                            stale.append(gateway_key(old.gateway_vendor, old.gateway_id))
                    records[site.site_id] = site.to_json()
                    index[gateway_key(site.gateway_vendor, site.gateway_id)] = site.site_id
                pipe.multi()
                if stale:
                    pipe.hdel(BY_GATEWAY, *stale)
                if records:
                    pipe.hset(RECORDS, mapping=records)
                    pipe.hset(BY_GATEWAY, mapping=index)
                pipe.incr(VERSION)
                pipe.execute()
                break
            except redis.WatchError:
                continue
    added = sum(1 for s in sites if s.site_id not in existing)
    return added, len(sites) - added


def save_site(client: redis.Redis, site: Site) -> None:
    """Store one changed site record and bump the registry version."""
    with client.pipeline(transaction=True) as pipe:
        pipe.hset(RECORDS, site.site_id, site.to_json())
        pipe.hset(BY_GATEWAY, gateway_key(site.gateway_vendor, site.gateway_id), site.site_id)
        pipe.incr(VERSION)
        pipe.execute()


def _unique_node_bases(sites) -> dict[str, Site]:
    """openNDS sites registered with a node suffix, by their bare name when that name is theirs alone."""
    found: dict[str, list[Site]] = {}
    for site in sites:
        base, node = split_node_suffix(site.gateway_id) if site.gateway_vendor == "opennds" else ("", "")
        if node:
            found.setdefault(gateway_key("opennds", base), []).append(site)
    return {key: group[0] for key, group in found.items() if len(group) == 1}


class SiteCache:
    """The registry held in process memory, refreshed when the version key changes."""

    def __init__(self):
        self._version: bytes | None = None
        self._checked = 0.0
        self._by_id: dict[str, Site] = {}
        self._by_gw: dict[str, Site] = {}
        self._by_node_base: dict[str, Site] = {}
        self._lock = threading.Lock()

    def _refresh(self, client: redis.Redis) -> None:
        now = time.monotonic()
        if now - self._checked < CHECK_INTERVAL:
            return
        with self._lock:
            if now - self._checked < CHECK_INTERVAL:
                return
            version = client.get(VERSION)
            if version != self._version or version is None:
                records = client.hgetall(RECORDS)
                by_id = {k.decode(): Site.from_json(v) for k, v in records.items()}
                self._by_id = by_id
                self._by_gw = {gateway_key(s.gateway_vendor, s.gateway_id): s for s in by_id.values()}
                self._by_node_base = _unique_node_bases(by_id.values())
                self._version = version
            self._checked = now

    def find(self, client: redis.Redis | None, vendor: str, gateway_id: str) -> Site | None:
        """Return the site of a gateway; a Redis failure falls back to the cached copy.

        openNDS adds ``" Node:<id>"`` to its gateway name by default: a site registered
        as ``hs-1`` is found for ``hs-1 Node:e4956e4d641c``, and a site registered with
        its suffix is found for the bare name when no other site shares that name.
        """
        self._try_refresh(client)
        site = self._by_gw.get(gateway_key(vendor, gateway_id))
        if site is None and vendor == "opennds":
            base, node = split_node_suffix(gateway_id)
            if node:
                site = self._by_gw.get(gateway_key(vendor, base))
            else:
                site = self._by_node_base.get(gateway_key(vendor, base))
        return site

    def get(self, client: redis.Redis | None, site_id: str) -> Site | None:
        """Return a site by id; a Redis failure falls back to the cached copy."""
        self._try_refresh(client)
        return self._by_id.get(site_id)

    def all(self, client: redis.Redis | None) -> list[Site]:
        """Return every site."""
        self._try_refresh(client)
        return list(self._by_id.values())

    def invalidate(self) -> None:
        """Force a version check on the next lookup."""
        self._checked = 0.0

    def _try_refresh(self, client: redis.Redis | None) -> None:
        if client is None:
            return
        try:
            self._refresh(client)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            self._checked = time.monotonic()  # keep serving the last copy
            from .redis import report_down

            report_down()  # and the rest of the request skips Redis: it would wait the same way
