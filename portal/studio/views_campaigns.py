"""Campaigns: write, submit, review and publish (now or scheduled), roll back, preview.

Draft → in review → published. The reviewer must be neither the author nor the last
editor. Publishing refuses, with the reason shown, a page over the 14 KB gzip budget,
an outside URL or a missing translation. Every published version is immutable.
"""
from __future__ import annotations

import gzip
import re
import time

from flask import abort, current_app, g, make_response, redirect, render_template, request, url_for

from hotspot_hooks import Arrival

from .. import staff_access
from ..campaigns import index as campaign_index
from ..campaigns import store
from ..campaigns.images import ImageRejected, image_id, reencode
from ..campaigns.model import (LIMITS, TEXT_FIELDS, VARIANTS, blank, merged, missing_translations,
                               schedule_of, targeting_of, validate)
from ..campaigns.render import template_source
from ..campaigns.sanitize import outside_urls
from ..campaigns.schedule import wita, wita_timestamp
from ..headers import inline_styles, resident_policy
from ..i18n import LANGUAGE_NAMES, LANGUAGES
from ..sessions import PortalSession
from ..sites import SITE_TYPES
from ..staff_access import require
from . import bp, client, log_action, message, province
from .i18n import S_, s_

PAGE_BUDGET = 14 * 1024  # bytes of the landing page, gzipped (tests/test_page_weight.py)
EDITORS = ("admin", "editor")
REVIEWERS = ("admin", "reviewer")
STATUS_NAMES = {"draft": S_("Draft"), "review": S_("In review"), "published": S_("Published")}


def sites():
    """This process's site registry."""
    return current_app.extensions["portal_sites"]


def site_lookup(site_id: str):
    """A registered site by id, or None."""
    return sites().get(client(), site_id)


def scoped(campaign_id: str) -> dict:
    """The working copy of a campaign in the staff member's region, else 404."""
    campaign = store.load(client(), province(), campaign_id)
    if campaign is None or not staff_access.current().covers(campaign["region"]):
        abort(404)
    return campaign


def _codes(text: str) -> list[str]:
    return [c for c in re.split(r"[\s,;]+", text or "") if c]


def _int(text: str, default: int = -1) -> int:
    try:
        return int((text or "").strip() or 0)
    except ValueError:
        return default


def from_form(base: dict, form, files) -> tuple[dict, list[tuple[str, str]]]:
    """The working copy with what the edit form sent, and any image problem."""
    content = {v: {lang: {f: (form.get(f"{v}-{lang}-{f}") or "").strip()[:LIMITS[f] + 1] for f in TEXT_FIELDS}
                   for lang in LANGUAGES} for v in VARIANTS}
    weight_b = _int(form.get("weight-B"), -1)
    changes = {
        "name": (form.get("name") or "").strip(),
        "content": content,
        "weights": {"A": 100 - weight_b if 0 <= weight_b <= 100 else 100, "B": weight_b},
        "theme": {k: (form.get(f"theme-{k}") or "").strip().lower() for k in ("bg", "fg", "accent")},
        "schedule": {k: (form.get(k) or "").strip() for k in ("start", "end", "hours_from", "hours_to")},
        "targeting": {"regions": _codes(form.get("regions")), "types": [t for t in form.getlist("types")],
                      "sites": _codes(form.get("sites"))},
        "priority": _int(form.get("priority")), "cap": _int(form.get("cap")),
        "emergency": form.get("emergency") == "y",
    }
    if not base["id"]:
        changes["id"] = (form.get("id") or "").strip().lower()
    if form.get("remove_image") == "y":
        changes.update(image="", image_size=[0, 0])
    campaign = merged(base, changes)
    problems = []
    upload = files.get("image")
    if upload and upload.filename:
        try:
            jpeg, width, height = reencode(upload.read(), int(current_app.config["STUDIO_IMAGE_MAX_KB"]) * 1024)
        except ImageRejected as error:
            problems.append(("image", error.reason))
        else:
            campaign["image"], campaign["image_size"] = image_id(jpeg), [width, height]
            store.save_image(client(), province(), campaign["image"], jpeg)
    return campaign, problems


@bp.get("/campaigns")
@require()
def campaigns():
    """Campaigns of the staff member's region, with their state."""
    me = staff_access.current()
    now = time.time()
    rows = []
    for c in sorted(store.all_campaigns(client(), province()), key=lambda c: c["id"]):
        if me.covers(c["region"]):
            rows.append((c, store.live_version(store.live_entries(client(), province(), c["id"]), now)))
    return render_template("studio/campaigns.html", rows=rows, status_names=STATUS_NAMES)


@bp.route("/campaigns/new", methods=["GET", "POST"])
@require(*EDITORS)
def campaign_new():
    """Write a new campaign (a draft in the staff member's region)."""
    return edit(blank(staff_access.current().region), new=True)


@bp.route("/campaigns/<campaign_id>/edit", methods=["GET", "POST"])
@require(*EDITORS)
def campaign_edit(campaign_id: str):
    """Change a draft, or start a new draft of a published campaign."""
    campaign = scoped(campaign_id)
    if campaign["status"] == "review":
        return message(s_("This campaign is in review; ask the reviewer to send it back first."), 409,
                       back=url_for("studio.campaign", campaign_id=campaign_id))
    return edit(campaign, new=False)


def edit(campaign: dict, *, new: bool):
    """The edit form: validate, store the draft (in review again only after a new submission)."""
    me = staff_access.current()
    problems: list[tuple[str, str]] = []
    if request.method == "POST":
        campaign, problems = from_form(campaign, request.form, request.files)
        problems += validate(campaign, covers=me.covers, site_lookup=site_lookup)
        if new and not problems and store.load(client(), province(), campaign["id"]) is not None:
            problems.append(("id", S_("A campaign with this short name exists already.")))
        if not problems:
            campaign.update(status="draft", updated_by=me.username, updated_at=time.time(), review={})
            if new:
                campaign["author"] = me.username
            store.save(client(), province(), campaign)
            log_action("campaign.create" if new else "campaign.edit", target=campaign["id"], region=campaign["region"])
            return redirect(url_for("studio.campaign", campaign_id=campaign["id"]))
    status = 400 if problems else 200
    return render_template("studio/campaign_edit.html", c=campaign, new=new, problems=problems,
                           languages=LANGUAGES, language_names=LANGUAGE_NAMES, variants=VARIANTS,
                           site_types=SITE_TYPES, limits=LIMITS), status


@bp.get("/campaigns/<campaign_id>")
@require()
def campaign(campaign_id: str):
    """A campaign: its state, the workflow's next steps and every published version."""
    c = scoped(campaign_id)
    entries = store.live_entries(client(), province(), campaign_id)
    return render_template("studio/campaign.html", c=c, versions=store.versions(client(), province(), campaign_id),
                           live=store.live_version(entries, time.time()), entries=entries,
                           status_names=STATUS_NAMES, wita=wita, problems=[])


@bp.post("/campaigns/<campaign_id>/submit")
@require(*EDITORS)
def campaign_submit(campaign_id: str):
    """Send a draft to review."""
    c = scoped(campaign_id)
    if c["status"] != "draft":
        return message(s_("Only a draft can be sent to review."), 409, back=url_for("studio.campaign", campaign_id=campaign_id))
    c.update(status="review", review={"submitted_by": staff_access.current().username, "submitted_at": time.time()})
    store.save(client(), province(), c)
    log_action("campaign.submit", target=campaign_id, region=c["region"])
    return redirect(url_for("studio.campaign", campaign_id=campaign_id))


@bp.post("/campaigns/<campaign_id>/reject")
@require(*REVIEWERS)
def campaign_reject(campaign_id: str):
    """Send a campaign in review back to its author, with a reason."""
    c = scoped(campaign_id)
    reason = (request.form.get("reason") or "").strip()[:500]
    if c["status"] != "review" or not reason:
        return message(s_("Give a reason to send the campaign back."), 400, back=url_for("studio.campaign", campaign_id=campaign_id))
    c.update(status="draft", review={**c.get("review", {}), "rejected_by": staff_access.current().username,
                                     "reason": reason})
    store.save(client(), province(), c)
    log_action("campaign.reject", target=campaign_id, region=c["region"])
    return redirect(url_for("studio.campaign", campaign_id=campaign_id))


def sample_site(c: dict):
    """A site the campaign targets (for the page-weight check and the preview's default)."""
    targeting = targeting_of(c)
    for site_id in targeting.sites:
        site = site_lookup(site_id)
        if site is not None:
            return site
    for site in sites().all(client()):
        if targeting.matches(site):
            return site
    return None


def render_as_resident(c: dict, variant: str, lang: str, site) -> str:
    """The landing page exactly as a resident of *site* would get it with this campaign."""
    from .. import splash

    key = f"preview:{c['id']}:{variant}"
    g.campaign_preview = (key, current_app.jinja_env.from_string(template_source(c, variant)))
    previous = g.get("lang")
    g.lang = lang
    try:
        visit = PortalSession(token="preview", arrival=Arrival(vendor=site.gateway_vendor if site else "mikrotik",
                                                               gateway_id=""),
                              site_id=site.site_id if site else "", lang=lang, campaign=key)
        return splash._render_landing(visit, site, fallback="")
    finally:
        g.lang = previous if previous else lang
        g.pop("campaign_preview", None)


def publish_problems(c: dict) -> list[str]:
    """Why this campaign may not be published (translated), empty when it may."""
    problems = []
    missing = missing_translations(c)
    if missing:
        problems.append(s_("Missing translation: %(fields)s", fields=", ".join(missing)))
    site = sample_site(c)
    if site is None:
        problems.append(s_("The campaign targets no registered site."))
    for variant in [v for v in VARIANTS if v == "A" or c["weights"].get(v, 0) > 0]:
        for lang in LANGUAGES:
            html = render_as_resident(c, variant, lang, site)
            outside = outside_urls(html)
            if outside:
                problems.append(s_("Outside URL (residents are not online yet): %(url)s", url=outside[0]))
            size = len(gzip.compress(html.encode(), compresslevel=6))
            if size > PAGE_BUDGET:
                problems.append(s_("The page is %(size)d bytes gzipped in %(lang)s, over the 14 KB budget.",
                                   size=size, lang=lang))
    return list(dict.fromkeys(problems))


@bp.post("/campaigns/<campaign_id>/approve")
@require(*REVIEWERS)
def campaign_approve(campaign_id: str):
    """Approve a campaign in review: publish it now or at a chosen WITA time."""
    me = staff_access.current()
    c = scoped(campaign_id)
    back = url_for("studio.campaign", campaign_id=campaign_id)
    if c["status"] != "review":
        return message(s_("Only a campaign in review can be approved."), 409, back=back)
    if me.username in (c.get("author"), c.get("updated_by"), c.get("review", {}).get("submitted_by")):
        return message(s_("The reviewer must not be the author: another reviewer has to approve this."), 403, back=back)
    publish_at = None
    if request.form.get("publish_date"):
        publish_at = wita_timestamp(request.form["publish_date"], request.form.get("publish_time") or "00:00")
        if publish_at is None:
            return message(s_("Dates are written as YYYY-MM-DD."), 400, back=back)
    problems = publish_problems(c)
    if problems:
        entries = store.live_entries(client(), province(), campaign_id)
        return render_template("studio/campaign.html", c=c, versions=store.versions(client(), province(), campaign_id),
                               live=store.live_version(entries, time.time()), entries=entries,
                               status_names=STATUS_NAMES, wita=wita, problems=problems), 422
    number = store.publish(client(), province(), c, by=me.username, reviewed_by=me.username, publish_at=publish_at)
    campaign_index().invalidate()
    log_action("campaign.publish", target=campaign_id, region=c["region"], version=number,
               scheduled=bool(publish_at and publish_at > time.time()))
    return redirect(back)


@bp.post("/campaigns/<campaign_id>/rollback")
@require("admin", "editor", "reviewer")
def campaign_rollback(campaign_id: str):
    """Make an earlier published version live again, or withdraw the campaign (version 0)."""
    c = scoped(campaign_id)
    number = _int(request.form.get("version"), -1)
    back = url_for("studio.campaign", campaign_id=campaign_id)
    if number < 0 or (number and store.version(client(), province(), campaign_id, number) is None):
        return message(s_("No such version."), 404, back=back)
    store.set_live(client(), province(), campaign_id, number)
    campaign_index().invalidate()
    log_action("campaign.rollback" if number else "campaign.withdraw", target=campaign_id, region=c["region"],
               version=number)
    return redirect(back)


def preview_choice():
    """Site, language, time and variant the preview was asked for (defaults: the sample site, now)."""
    site = site_lookup(request.args.get("site", "")) if request.args.get("site") else None
    me = staff_access.current()
    if site is not None and not me.covers(site.desa_kode):
        abort(404)
    lang = request.args.get("page_lang") if request.args.get("page_lang") in LANGUAGES else "id"  # ?lang= is the studio's own
    at = request.args.get("at", "")
    day, _, hour = at.partition("T")
    ts = wita_timestamp(day, hour[:5]) if at else None
    variant = request.args.get("variant") if request.args.get("variant") in VARIANTS else "A"
    return site, lang, ts if ts is not None else time.time(), variant


def preview_source(campaign_id: str) -> dict:
    """The working copy, or a published version with ``?version=``."""
    c = scoped(campaign_id)
    number = _int(request.args.get("version"), 0)
    if number:
        c = store.version(client(), province(), campaign_id, number) or abort(404)
    return c


@bp.get("/campaigns/<campaign_id>/preview")
@require()
def campaign_preview(campaign_id: str):
    """What a resident would see, at 320 and 360 px, for a chosen site, language and time."""
    c = preview_source(campaign_id)
    site, lang, ts, variant = preview_choice()
    site = site or sample_site(c)
    runs = schedule_of(c).active(ts)
    targets = targeting_of(c).matches(site)
    args = {"site": site.site_id if site else "", "page_lang": lang, "variant": variant,
            "at": wita(ts).strftime("%Y-%m-%dT%H:%M"), "version": request.args.get("version") or None}
    return render_template("studio/preview.html", c=c, site=site, lang=lang, args=args, runs=runs,
                           targets=targets, languages=LANGUAGES, language_names=LANGUAGE_NAMES,
                           variants=VARIANTS, frame=url_for("studio.campaign_preview_frame", campaign_id=campaign_id,
                                                             **args))


@bp.get("/campaigns/<campaign_id>/preview/frame")
@require()
def campaign_preview_frame(campaign_id: str):
    """The real landing page with this campaign, as the studio's preview frames show it."""
    c = preview_source(campaign_id)
    site, lang, _ts, variant = preview_choice()
    html = render_as_resident(c, variant, lang, site or sample_site(c))
    response = make_response(html)
    # The resident's own policy (its inline styles by hash, no script), framed by the studio only.
    policy = resident_policy(inline_styles(html.encode()) or None).replace("frame-ancestors 'none'",
                                                                           "frame-ancestors 'self'")
    response.headers.update({"Content-Security-Policy": policy, "X-Frame-Options": "SAMEORIGIN"})
    return response
