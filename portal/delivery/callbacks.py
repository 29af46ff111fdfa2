"""The receiver's way back: signed status callbacks (``POST /callbacks/lapor``).

The receiver POSTs JSON ``{"tracking": "…", "status": "forwarded"|"answered",
"lapor_id": "…", "lapor_url": "https://…"}`` signed like the webhook
(``portal.delivery.signing``) with the callback secret. Forged signatures
and timestamps outside the window are refused (401). The same callback
twice changes nothing the second time (status only moves forward, and a
seen signature is answered ``duplicate``), so receivers may retry freely.
"""
from __future__ import annotations

import hashlib
import logging

from flask import Blueprint, current_app, jsonify, request

from ..redis import DOWN_ERRORS, raw_client
from ..tracking import normalize
from . import settings as delivery_settings
from . import state
from .signing import SignatureError, verify
from .worker import funnel_step

bp = Blueprint("delivery_callbacks", __name__)
log = logging.getLogger(__name__)
SEEN = "portal:{{p{prov}}}:callback:seen:{digest}"


@bp.post("/callbacks/lapor")
def status_callback():
    """Apply a signed status change from a receiver."""
    config = delivery_settings.load(current_app)
    if not config.callback_secret:
        return jsonify(error="callbacks are not configured"), 404
    body = request.get_data()
    try:
        verify(config.callback_secret, request.headers, body, window=config.callback_window)
    except SignatureError as error:
        log.warning("callback refused: %s", error)
        return jsonify(error="invalid signature"), 401
    data = request.get_json(silent=True)
    if not isinstance(data, dict):  # a signed list or string is still not a status change
        data = {}
    tracking = normalize(str(data.get("tracking", "")))
    status = data.get("status")
    if tracking is None or status not in ("forwarded", "answered"):
        return jsonify(error="tracking and status (forwarded|answered) are required"), 422
    extra = {}
    if data.get("lapor_id"):
        extra["lapor_id"] = str(data["lapor_id"])[:64]
    if str(data.get("lapor_url", "")).startswith(("https://", "http://")):
        extra["lapor_url"] = str(data["lapor_url"])[:300]
    province = current_app.config["PROVINCE"]
    seen = SEEN.format(prov=province, digest=hashlib.sha256(request.headers.get("X-Portal-Signature", "").encode())
                       .hexdigest()[:32])
    try:
        client = raw_client()
        if client.exists(seen):
            return jsonify(result="duplicate"), 200
        moved = state.advance(client, province, tracking, status, **extra)
        if moved > 0 and status == "answered":
            funnel_step(client, province, tracking, "answered")
        # Remembered only after it took effect, so a retry after a failure here still applies.
        client.set(seen, "1", ex=config.callback_window * 2)
    except DOWN_ERRORS:
        return jsonify(error="try again later"), 503
    if moved < 0:
        return jsonify(error="unknown tracking number"), 404
    log.info("callback: complaint %s %s", tracking, status if moved else f"already {status}")
    return jsonify(result="updated" if moved else "unchanged"), 200
