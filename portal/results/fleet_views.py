"""The fleet page: every site's state, offline sites by region, per-vendor grant failure rates."""
from __future__ import annotations

import time
from collections import defaultdict

from flask import Blueprint, current_app, jsonify, request

from .. import funnel, staff_access
from ..redis import DOWN_ERRORS, raw_client
from . import fleet
from ..i18n import gettext as _
from ..i18n import lazy_gettext as _l
from .pages import csv_response, page, problem, use_staff_language
from .period import region_name

bp = Blueprint("fleet", __name__, url_prefix="/studio/fleet")
bp.before_request(use_staff_language)
STATE_NAMES = {"": _l("all"), "online": _l("online"), "stale": _l("stale"), "offline": _l("offline")}


def scoped_health(staff, now: float) -> list:
    """Health of the sites in the staff member's region."""
    config = current_app.config
    sites = [s for s in current_app.extensions["portal_sites"].all(raw_client()) if staff.covers(s.desa_kode)]
    return fleet.health(raw_client(), sorted(sites, key=lambda s: s.site_id), now=now,
                        stale=float(config["FLEET_STALE_SECONDS"]), offline=float(config["FLEET_OFFLINE_SECONDS"]))


@bp.get("/")
@staff_access.require()
def index():
    """Sites with their last heartbeat, resident and grant; offline ones grouped by kabupaten."""
    staff = staff_access.current()
    now = time.time()
    state_filter = request.args.get("state", "")
    if state_filter not in ("", "online", "stale", "offline"):
        return problem(_("State must be online, stale or offline."))
    try:
        rows = scoped_health(staff, now)
        days = funnel.day_range(funnel.today_wita(now - 6 * 86400), funnel.today_wita(now))
        province = current_app.config["PROVINCE"]
        # Kept per province and per kabupaten: a member scoped finer than a kabupaten sees none.
        mine = staff.region.replace(".", "")  # the studio keeps regions dotted ("51.71")
        vendors = fleet.vendor_rates(raw_client(), province, days, kab="" if mine == province else mine) \
            if mine == province or len(mine) == 4 else []
    except DOWN_ERRORS:
        return problem(_("The store is unreachable; try again in a minute."), 503)
    counts = defaultdict(int)
    offline_by_region: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        counts[row.state] += 1
        if row.state == "offline":
            offline_by_region[row.kabupaten_kode][row.kecamatan_kode].append(row)
    shown = [r for r in rows if not state_filter or r.state == state_filter]
    return page("results/fleet.html", staff=staff, rows=shown, counts=counts, total=len(rows),
                offline_by_region=offline_by_region, vendors=vendors, region_name=region_name,
                ago=lambda at: fleet.ago(at, now), wita_time=fleet.wita_time, state_filter=state_filter,
                state_names=STATE_NAMES)


@bp.get("/sites.<fmt>")
@staff_access.require()
def export(fmt: str):
    """The site list as CSV or JSON."""
    if fmt not in ("csv", "json"):
        return problem(_("Export as .csv or .json."), 404)
    try:
        rows = scoped_health(staff_access.current(), time.time())
    except DOWN_ERRORS:
        return problem(_("The store is unreachable; try again in a minute."), 503)
    columns = ("site_id", "name", "vendor", "kabupaten_kode", "kecamatan_kode", "desa_kode", "state",
               "heartbeat", "resident", "grant")
    if fmt == "json":
        return jsonify(sites=[{c: getattr(r, c) for c in columns} for r in rows])
    return csv_response([list(columns)] + [[getattr(r, c) if getattr(r, c) is not None else "" for c in columns]
                                           for r in rows], "fleet.csv")
