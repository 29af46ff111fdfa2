"""Which campaign a resident sees: a published one that targets the site, else the built-in one.

The studio (portal/studio) writes campaigns; this package holds their model, storage,
sanitizing, images, contrast, schedule and targeting, and the request-time choice.
The built-in SP4N LAPOR! campaign shows whenever nothing else applies, and whenever
Redis or a published campaign fails (fail open).
"""
from __future__ import annotations

import logging
import time

from flask import Blueprint, abort, current_app, g

from landing_pages import CAMPAIGN_TEMPLATES, DEFAULT_CAMPAIGN

from ..redis import DOWN_ERRORS, get_redis, report_failure
from . import store
from .index import CampaignIndex
from .schedule import wita

log = logging.getLogger(__name__)
EXTENSION = "portal_campaigns"
bp = Blueprint("campaigns", __name__)


def index() -> CampaignIndex:
    """This process's index of published campaigns."""
    return current_app.extensions[EXTENSION]


def _client():
    try:
        return get_redis()
    except DOWN_ERRORS:
        return None


def campaign_for(site, device: str = "", now: float | None = None) -> str:
    """Return the id of the campaign to show at *site* to *device* (the built-in one by default)."""
    if site is None:
        return DEFAULT_CAMPAIGN
    try:
        idx = index()
        idx.refresh(_client())
        chosen = idx.choose(site, device, time.time() if now is None else now, under_cap=under_cap)
    except Exception:  # noqa: BLE001 - a broken campaign must never keep a resident from the page
        log.exception("campaign selection failed; showing the built-in campaign")
        return DEFAULT_CAMPAIGN
    return chosen or DEFAULT_CAMPAIGN


def under_cap(entry, device: str, now: float) -> bool:
    """Count one showing to *device*; False once it passed the campaign's daily cap (WITA day)."""
    if not device:
        return True  # no device id (no MAC): nothing to count against, show it
    day = wita(now).strftime("%Y%m%d")
    key = f"portal:{{p{index().province}}}:cmp:cap:{entry.id}:{device}:{day}"
    try:
        with get_redis().pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, 2 * 86400)
            count = pipe.execute()[0]
    except DOWN_ERRORS:
        report_failure()
        return True
    return int(count) <= entry.cap


def campaign_template(campaign_id: str):
    """Return the template of a campaign (a name or a compiled template), else the built-in one."""
    preview = g.get("campaign_preview") if g else None
    if preview and preview[0] == campaign_id:
        return preview[1]
    if campaign_id in CAMPAIGN_TEMPLATES:
        return CAMPAIGN_TEMPLATES[campaign_id]
    if campaign_id.startswith("c:"):
        try:
            return compiled(campaign_id)
        except Exception:  # noqa: BLE001 - fail open to the built-in campaign
            log.exception("published campaign %s could not be compiled", campaign_id.split(":")[1])
    return CAMPAIGN_TEMPLATES[DEFAULT_CAMPAIGN]


def compiled(campaign_id: str):
    """The compiled template of ``c:<id>:<version>:<variant>`` (cached per snapshot)."""
    idx = index()
    template = idx.templates.get(campaign_id)
    if template is None:
        key, _, variant = campaign_id.rpartition(":")
        entry = idx.by_key.get(key)
        source = entry.source(variant) if entry else None
        if source is None:  # withdrawn since the session opened
            return CAMPAIGN_TEMPLATES[DEFAULT_CAMPAIGN]
        template = idx.templates[campaign_id] = current_app.jinja_env.from_string(source)
    return template


@bp.get("/c/img/<image_id>.jpg")
def image(image_id: str):
    """A campaign image (re-encoded on upload), cached by content address."""
    if not image_id.isalnum() or len(image_id) > 64:
        abort(404)
    try:
        data = store.load_image(get_redis(), current_app.config["PROVINCE"], image_id)
    except DOWN_ERRORS:
        abort(404)
    if data is None:
        abort(404)
    return data, 200, {"Content-Type": "image/jpeg", "Cache-Control": "public, max-age=31536000, immutable"}


def init_app(app) -> None:
    """The index of published campaigns and the image route."""
    app.extensions[EXTENSION] = CampaignIndex(app.config["PROVINCE"])
    app.register_blueprint(bp)
