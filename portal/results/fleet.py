"""Fleet health: each site's last heartbeat, last resident and last grant, and its state.

States: ``online`` (heard from within ``FLEET_STALE_SECONDS``), ``stale`` (within
``FLEET_OFFLINE_SECONDS``), ``offline`` (longer, or never). One pipelined read covers the
whole registry (2,303 sites: two small reads each), no keyspace scan.
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from ..events import GRANTS, KAB_GRANTS, LAST, WITA
from ..heartbeat import HEARTBEAT


@dataclass(frozen=True)
class SiteHealth:
    """One site as the fleet page shows it."""

    site_id: str
    name: str
    vendor: str
    kabupaten_kode: str
    kecamatan_kode: str
    desa_kode: str
    heartbeat: float | None
    resident: float | None
    grant: float | None
    state: str


def state_of(seen: float | None, now: float, *, stale: float, offline: float) -> str:
    """``online``, ``stale`` or ``offline`` for a last heartbeat time."""
    if seen is None or now - seen > offline:
        return "offline"
    return "stale" if now - seen > stale else "online"


def health(client, sites, *, now: float | None = None, stale: float, offline: float) -> list[SiteHealth]:
    """The health of every site in *sites*, in one round trip."""
    now = time.time() if now is None else now
    sites = list(sites)
    with client.pipeline(transaction=False) as pipe:
        for site in sites:
            pipe.hget(HEARTBEAT.format(site.site_id), "seen")
            pipe.hmget(LAST.format(site=site.site_id), "resident", "grant")
        answers = pipe.execute()
    result = []
    for n, site in enumerate(sites):
        seen, (resident, grant) = _time(answers[2 * n]), answers[2 * n + 1]
        result.append(SiteHealth(
            site_id=site.site_id, name=site.name, vendor=site.gateway_vendor,
            kabupaten_kode=site.kabupaten_kode.replace(".", ""), kecamatan_kode=site.kecamatan_kode.replace(".", ""),
            desa_kode=site.desa_kode.replace(".", ""), heartbeat=seen, resident=_time(resident),
            grant=_time(grant), state=state_of(seen, now, stale=stale, offline=offline)))
    return result


def vendor_rates(client, province: str, days: list[str], *, kab: str = "") -> list[dict]:
    """Per vendor: grants ok, refused, failed and the failure rate over *days* (province, or one kabupaten)."""
    with client.pipeline(transaction=False) as pipe:
        for day in days:
            pipe.hgetall(KAB_GRANTS.format(kab=kab, day=day) if kab else GRANTS.format(prov=province, day=day))
        hashes = pipe.execute()
    totals: dict[str, dict[str, int]] = {}
    for fields in hashes:
        for raw, count in fields.items():
            vendor, _, outcome = raw.decode().partition("|")
            totals.setdefault(vendor, {"ok": 0, "refused": 0, "failed": 0})[outcome] = \
                totals.get(vendor, {}).get(outcome, 0) + int(count)
    rows = []
    for vendor, t in sorted(totals.items()):
        attempts = t["ok"] + t["refused"] + t["failed"]
        rows.append({"vendor": vendor, **t, "attempts": attempts,
                     "failure_rate": (t["failed"] + t["refused"]) / attempts if attempts else 0.0})
    return rows


def ago(at: float | None, now: float) -> str:
    """A short, readable age: ``5 min``, ``3 h``, ``2 d``; ``never`` for None (in the page's language)."""
    from ..i18n import gettext as _

    if at is None:
        return _("never")
    seconds = max(0, now - at)
    if seconds < 3600:
        return _("%(n)s min", n=int(seconds // 60))
    if seconds < 86400:
        return _("%(n)s h", n=int(seconds // 3600))
    return _("%(n)s d", n=int(seconds // 86400))


def wita_time(at: float | None) -> str:
    """A unix time as ``2026-12-02 14:05`` WITA, or ``–``."""
    if at is None:
        return "–"
    return dt.datetime.fromtimestamp(at + WITA, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


def _time(value) -> float | None:
    try:
        return float(value) if value else None
    except (TypeError, ValueError):
        return None
