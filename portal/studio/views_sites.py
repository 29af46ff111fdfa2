"""Sites: search and filter the registry, import a CSV after its validation report, edit
settings, set and rotate gateway secrets (never shown back), download the operator kit."""
from __future__ import annotations

import secrets as token_source
import time

from flask import Response, abort, current_app, redirect, render_template, request, url_for
from hotspot_hooks import HOOKS
from hotspot_hooks.guards import parse_router_hosts

from .. import heartbeat, staff_access
from ..crypto import get_crypto
from ..operator_kit import KitError, build_kit, render_text
from ..site_secrets import INT_SETTINGS, SECRET_NAMES, SiteAdminError, set_secret, set_setting
from ..sites import SITE_TYPES, ImportError_, import_sites, parse_csv
from ..staff_access import require
from . import bp, client, log_action, message, province
from .i18n import s_

OPERATORS = ("admin", "operator")
SHOWN = 200           # rows per list page
IMPORT_TTL = 900      # seconds a validated upload waits for its confirmation
SETTINGS = INT_SETTINGS + ("login_mode", "username", "router_hosts")


def registry():
    """This process's site registry."""
    return current_app.extensions["portal_sites"]


def scoped_site(site_id: str):
    """A site in the staff member's region, else 404."""
    site = registry().get(client(), site_id)
    if site is None or not staff_access.current().covers(site.desa_kode):
        abort(404)
    return site


def _import_key(token: str) -> str:
    return f"portal:{{p{province()}}}:studio:import:{token}"


@bp.get("/sites")
@require()
def sites():
    """The registry in the staff member's region, filtered by region, type, vendor and last seen."""
    me = staff_access.current()
    region = request.args.get("region", "").strip()
    kind, vendor = request.args.get("type", ""), request.args.get("vendor", "")
    unseen_days = request.args.get("unseen", "")
    found = [s for s in registry().all(client()) if me.covers(s.desa_kode)
             and (not region or s.desa_kode == region or s.desa_kode.startswith(region + "."))
             and (not kind or s.type == kind) and (not vendor or s.gateway_vendor == vendor)]
    if unseen_days.isdigit():
        fresh = set(m.decode() for m in client().zrangebyscore(
            heartbeat.INDEX.format(province()), time.time() - int(unseen_days) * 86400, "+inf"))
        found = [s for s in found if s.site_id not in fresh]
    found.sort(key=lambda s: s.site_id)
    shown = found[:SHOWN]
    with client().pipeline(transaction=False) as pipe:
        for site in shown:
            pipe.hget(heartbeat.HEARTBEAT.format(site.site_id), "seen")
        seen = pipe.execute()
    rows = [(site, int(s) if s else 0) for site, s in zip(shown, seen)]
    return render_template("studio/sites.html", rows=rows, total=len(found), site_types=SITE_TYPES,
                           vendors=sorted(HOOKS), args=request.args)


@bp.get("/sites/<site_id>")
@require()
def site(site_id: str):
    """One site: its record, settings and which secrets are set (never their values)."""
    return site_page(scoped_site(site_id), [])


def site_page(site, errors: list[str]):
    """The site page, with *errors* from a settings form."""
    stored = set()
    if site.secrets:
        try:
            stored = set(get_crypto().unseal(site.secrets))
        except Exception:  # noqa: BLE001 - undecryptable: show none as set, the operator re-sets them
            stored = set()
    return render_template("studio/site.html", site=site, seen=heartbeat.last_seen(client(), site.site_id),
                           settings=SETTINGS, secret_names=SECRET_NAMES, stored=stored, errors=errors,
                           can_edit=staff_access.current().role in OPERATORS), 400 if errors else 200


@bp.post("/sites/<site_id>/settings")
@require(*OPERATORS)
def site_settings(site_id: str):
    """Change a site's grant settings and router hosts."""
    site = scoped_site(site_id)
    errors, changed = [], []
    for key in SETTINGS:
        value = (request.form.get(key) or "").strip()
        current = site.settings.get("options", {}).get(key, "") if key == "router_hosts" else site.settings.get(key, "")
        if value == str(current):
            continue
        if key in INT_SETTINGS and value and not value.isdigit():
            errors.append(s_("%(field)s must be a whole number.", field=key))
        elif key == "router_hosts" and value and parse_router_hosts(value)[1]:
            errors.append(s_("router_hosts: not an address, network or host name: %(bad)s",
                             bad=", ".join(parse_router_hosts(value)[1])))
        else:
            try:
                set_setting(client(), site_id, key, value)
            except SiteAdminError:
                errors.append(s_("%(field)s could not be saved.", field=key))
            else:
                changed.append(key)
    if changed:
        registry().invalidate()
        log_action("site.settings", target=site_id, region=site.kabupaten_kode.replace(".", ""), keys=changed)
    if errors:
        return site_page(registry().get(client(), site_id) or site, errors)
    return redirect(url_for("studio.site", site_id=site_id))


@bp.post("/sites/<site_id>/secret")
@require(*OPERATORS)
def site_secret(site_id: str):
    """Set or rotate one gateway secret; the value is sealed and never shown again."""
    site = scoped_site(site_id)
    name, value = request.form.get("name", ""), request.form.get("value", "")
    if name not in SECRET_NAMES or not value.strip():
        return message(s_("Choose a secret and type its new value."), 400, back=url_for("studio.site", site_id=site_id))
    try:
        set_secret(client(), get_crypto(), site_id, name, value.strip())
    except SiteAdminError:
        return message(s_("The secret could not be saved."), 400, back=url_for("studio.site", site_id=site_id))
    registry().invalidate()
    log_action("site.secret_set", target=site_id, region=site.kabupaten_kode.replace(".", ""), name=name)
    return redirect(url_for("studio.site", site_id=site_id))


@bp.get("/sites/<site_id>/kit")
@require(*OPERATORS)
def site_kit(site_id: str):
    """The site's operator kit as a text download."""
    site = scoped_site(site_id)
    cfg = current_app.config
    try:
        kit = build_kit(site, public_url=cfg["PUBLIC_URL"], lapor_url=cfg["LAPOR_URL"], minutes=cfg["DEFAULT_MINUTES"])
    except KitError:
        return message(s_("No operator kit for this gateway yet."), 409, back=url_for("studio.site", site_id=site_id))
    log_action("site.kit_download", target=site_id, region=site.kabupaten_kode.replace(".", ""))
    return Response(render_text(kit), mimetype="text/plain",
                    headers={"Content-Disposition": f"attachment; filename=kit-{site_id}.txt"})


@bp.route("/sites/import", methods=["GET", "POST"])
@require(*OPERATORS)
def sites_import():
    """Upload a CSV: the validation report first; nothing is written until it is confirmed."""
    me = staff_access.current()
    report = None
    if request.method == "POST" and request.form.get("token"):
        raw = client().getdel(_import_key(request.form["token"]))
        if raw is None:
            return message(s_("This import expired: upload the file again."), 410, back=url_for("studio.sites_import"))
        parsed = parse_csv(raw.decode())
        added, updated = import_sites(client(), parsed)
        registry().invalidate()
        log_action("sites.import", rows=len(parsed), added=added, updated=updated)
        return render_template("studio/sites_import.html", done=(added, updated), report=None)
    if request.method == "POST":
        upload = request.files.get("file")
        text = upload.read().decode("utf-8-sig", "replace") if upload else ""
        errors, sites_ok = [], []
        try:
            sites_ok = parse_csv(text)
        except ImportError_ as error:
            errors = [(line, reason) for line, reason in error.errors]
        for n, site in enumerate(sites_ok, 2):
            if not me.covers(site.desa_kode):
                errors.append((n, s_("site %(site)s lies outside your region", site=site.site_id)))
        known = {s.site_id for s in registry().all(client())}
        report = {"errors": errors[:200], "error_count": len(errors), "rows": len(sites_ok),
                  "new": sum(1 for s in sites_ok if s.site_id not in known), "token": ""}
        if not errors and sites_ok:
            report["token"] = token_source.token_urlsafe(16)
            client().set(_import_key(report["token"]), text, ex=IMPORT_TTL)
    return render_template("studio/sites_import.html", report=report, done=None), \
        400 if report and report["error_count"] else 200
