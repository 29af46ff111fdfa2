"""The studio's data-subject request page (admin only): find, export or erase, every use audited."""
from __future__ import annotations

import hmac
import json

from flask import Blueprint, Response, current_app, request
from itsdangerous import BadData, URLSafeTimedSerializer

from .. import staff_access
from ..delivery.channels import erase_copies
from ..redis import DOWN_ERRORS
from . import dsr_actions
from ..i18n import gettext as _
from .fleet import wita_time
from .pages import page, problem, use_staff_language

bp = Blueprint("dsr", __name__, url_prefix="/studio/dsr")
bp.before_request(use_staff_language)
CSRF_MAX_AGE = 3600


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="studio-dsr-csrf")


def csrf_token(staff) -> str:
    """A token bound to this staff member, valid for an hour."""
    return _serializer().dumps(staff.id)


def csrf_ok(staff, token: str) -> bool:
    """True when *token* was issued to this staff member within the hour."""
    try:
        return hmac.compare_digest(str(_serializer().loads(token, max_age=CSRF_MAX_AGE)), staff.id)
    except BadData:
        return False


@bp.get("/")
@staff_access.require("admin")
def form():
    """The request form."""
    staff = staff_access.current()
    return page("results/dsr.html", staff=staff, csrf=csrf_token(staff), result=None, action="",
                wita_time=wita_time)


@bp.post("/")
@staff_access.require("admin")
def act():
    """Find, export or erase (with confirmation) for a tracking number or a contact."""
    staff = staff_access.current()
    if not csrf_ok(staff, request.form.get("csrf", "")):
        return problem(_("This form has expired; open it again and resubmit."), 400)
    action = request.form.get("action", "")
    if action not in ("find", "export", "erase"):
        return problem(_("Choose find, export or erase."))
    if action == "erase" and request.form.get("confirm") != "yes":
        return problem(_("Tick the confirmation box to erase: erasure cannot be undone."))
    from ..delivery import settings as delivery_settings

    channels = delivery_settings.load(current_app).channels
    try:
        result = dsr_actions.handle(action, tracking=request.form.get("tracking", ""),
                                    contact=request.form.get("contact", ""), actor=staff.username, role=staff.role,
                                    via="studio", on_erase=lambda tracking: erase_copies(channels, tracking),
                                    region=staff.region)
    except dsr_actions.NotFound as error:
        return problem(str(error))
    except DOWN_ERRORS:
        return problem(_("The store is unreachable; try again in a minute."), 503)
    if action == "export":
        return Response(json.dumps(result, ensure_ascii=False, indent=1, sort_keys=True), mimetype="application/json",
                        headers={"Content-Disposition": 'attachment; filename="data-subject-export.json"',
                                 "Cache-Control": "no-store"})
    return page("results/dsr.html", staff=staff, csrf=csrf_token(staff), result=result, action=action,
                wita_time=wita_time)
