"""The campaign studio for Diskominfos staff (issue 11), under ``/studio``.

Staff sign in on a cookie session of their own (path ``/studio``; residents' pages use
no cookies). Every form carries a CSRF token (Flask-WTF), every view is guarded by
``staff_access.require`` and scopes what it reads and writes with ``Staff.covers``, and
every action lands in the audit stream (portal/audit.py).
"""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect

from .. import audit, staff_access
from ..redis import DOWN_ERRORS, get_redis
from . import accounts
from .i18n import S_, s_

bp = Blueprint("studio", __name__, url_prefix="/studio", template_folder="templates",
               static_folder="static", static_url_path="/static")
csrf = CSRFProtect()

#: The studio's policy: its own stylesheet and script file, forms to itself, frames of its previews.
POLICY = "; ".join((
    "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self'",
    "form-action 'self'", "frame-src 'self'", "base-uri 'none'", "frame-ancestors 'self'",
))
UPLOAD_VIEWS = {"studio.campaign_new", "studio.campaign_edit", "studio.sites_import"}
UPLOAD_LIMIT = 8 * 1024 * 1024
#: Views a signed-in member with a temporary password may still use.
PASSWORD_CHANGE_VIEWS = {"studio.password", "studio.logout", "studio.login", "studio.static"}


def province() -> str:
    """The deployment's province code."""
    return current_app.config["PROVINCE"]


def client():
    """The app's Redis client."""
    return get_redis()


def load_staff():
    """The staff member of this request's studio session (the staff_access loader)."""
    if not request.path.startswith("/studio") or "sid" not in session:
        return None
    try:
        record = accounts.get(client(), province(), session["sid"])
    except DOWN_ERRORS:
        return None
    if record is None or record.get("gen") != session.get("gen") or record.get("disabled"):
        session.clear()
        return None
    g.staff_record = record
    return accounts.as_staff(record)


def log_action(action: str, target: str = "", region: str = "", *, actor: str | None = None, **details) -> None:
    """Record a staff action in the audit stream (identifiers and counts only)."""
    staff = staff_access.current()
    if actor is None:
        actor = staff.username if staff else ""
    role = staff.role if staff and staff.username == actor else ""
    audit.record(client(), province(), actor=actor, role=role, action=action, target=target,
                 region=region or (staff.region if staff else ""), **details)


def message(text: str, status: int = 200, **context):
    """A studio page with one message (refusals, confirmations)."""
    return render_template("studio/message.html", text=text, **context), status


@bp.before_request
def guard():
    """CSRF on every form, and a temporary password must be changed before anything else."""
    if request.endpoint in UPLOAD_VIEWS:
        request.max_content_length = UPLOAD_LIMIT  # a campaign image, before it is shrunk
    if request.method == "POST":
        csrf.protect()
    staff = staff_access.current()
    if staff is not None and g.get("staff_record", {}).get("must_change") \
            and request.endpoint not in PASSWORD_CHANGE_VIEWS:
        return redirect(url_for("studio.password"))
    return None


@bp.after_request
def studio_headers(response):
    """Staff pages: the studio's CSP, never cached by a shared proxy."""
    response.headers.setdefault("Content-Security-Policy", POLICY)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.errorhandler(CSRFError)
def csrf_failed(error):
    """A form without a valid CSRF token: say what to do."""
    return message(s_("The form expired or did not come from the studio. Go back, reload it and try again."), 400)


def redis_down(error):
    """Staff pages need Redis (accounts, campaigns): say so plainly instead of a 500."""
    from ..redis import report_failure

    report_failure()
    return message(s_("The studio cannot reach its database right now. Residents are not affected; "
                      "try again in a minute."), 503)


for _error in DOWN_ERRORS:
    bp.register_error_handler(_error, redis_down)


@bp.errorhandler(403)
def forbidden(error):
    """A role or region that may not do this."""
    return message(s_("Your role or region does not allow this."), 403)


@bp.errorhandler(404)
def missing(error):
    """Not found, which is also what another region's objects look like."""
    return message(s_("Not found, or outside your region."), 404)


ROLE_NAMES = {
    "admin": S_("Province administrator"), "editor": S_("Kabupaten/kota editor"), "reviewer": S_("Reviewer"),
    "operator": S_("Network operator"), "auditor": S_("Auditor (read-only)"),
}


def role_name(role: str) -> str:
    """A role as staff call it, in their language."""
    return s_(ROLE_NAMES.get(role, role))


def region_name(code: str) -> str:
    """The name of a staff or campaign region (undotted code)."""
    from ..campaigns.schedule import dotted
    from ..regions import regions

    entry = regions().get(dotted(code))
    return f"{entry[0]} ({dotted(code)})" if entry else code


def wita_text(ts) -> str:
    """A unix time as WITA date and time."""
    from ..campaigns.schedule import wita

    return wita(float(ts)).strftime("%Y-%m-%d %H:%M")


class StudioSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie session, opened only under the cookie's own path (/studio).

    Residents, gateways and receivers never send that cookie and never use the session;
    skipping it spares each of their requests the serializer set-up (issue 14).
    """

    def open_session(self, app, request):
        if not request.path.startswith(app.config["SESSION_COOKIE_PATH"]):
            return None  # Flask uses a null session, which refuses writes
        return super().open_session(app, request)


def init_app(app) -> None:
    """Register the studio: its session cookie, CSRF, catalog, views and the ``staff`` CLI."""
    from . import cli, i18n, views_audit, views_auth, views_campaigns, views_complaints, views_sites  # noqa: F401

    app.config.update(
        SESSION_COOKIE_NAME="studio",
        SESSION_COOKIE_PATH="/studio",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=str(app.config.get("PUBLIC_URL", "")).startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=float(app.config["STUDIO_SESSION_HOURS"])),
        WTF_CSRF_CHECK_DEFAULT=False,  # only the studio's forms: gateways and residents post without cookies
        WTF_CSRF_TIME_LIMIT=None,      # the token lives as long as the sign-in
    )
    app.session_interface = StudioSessions()
    csrf.init_app(app)
    i18n.init_app(app)
    staff_access.set_loader(load_staff)
    app.jinja_env.globals.update(current_staff=staff_access.current, role_name=role_name, region_name=region_name,
                                 wita_text=wita_text)
    app.register_blueprint(bp)
    app.cli.add_command(cli.staff_cli)
