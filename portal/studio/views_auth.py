"""Signing in and out, one's own account (password, TOTP, language), and staff administration."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, g, redirect, render_template, request, session, url_for

from .. import limits, staff_access
from ..staff_access import ROLES, require
from . import accounts, bp, client, log_action, message, province
from .i18n import NAMES, s_

LOGIN_LIMIT = 30  # sign-in attempts per client address per 10 minutes, on top of the per-account lockout


def safe_next(target: str) -> str:
    """A ``next`` that stays inside the studio (no open redirect)."""
    parts = urlsplit(target or "")
    if parts.scheme or parts.netloc or not parts.path.startswith("/studio") or target.startswith("//"):
        return url_for("studio.home")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign in with username, password and (when set up) a TOTP code."""
    error = ""
    if request.method == "POST":
        if not limits.allow("studio_login", limits.client_subject(), LOGIN_LIMIT, 600):
            return message(s_("Too many sign-in attempts from this address. Wait ten minutes."), 429)
        username = request.form.get("username", "").strip().lower()
        cfg = current_app.config
        record, reason = accounts.authenticate(
            client(), province(), username, request.form.get("password", ""), request.form.get("code", ""),
            max_failures=int(cfg["STUDIO_LOCKOUT_FAILURES"]), lock_minutes=int(cfg["STUDIO_LOCKOUT_MINUTES"]))
        if record is None:
            log_action("studio.sign_in_failed", target=username[:64], region="", actor=username[:64], reason=reason)
            error = {"locked": s_("This account is locked after too many failed attempts. Try again later "
                                  "or ask an administrator to reset the password."),
                     "totp": s_("The code from the authenticator app is wrong.")}.get(
                reason, s_("Wrong username or password."))
        else:
            session.clear()
            session.permanent = True
            session.update(sid=record["id"], gen=record["gen"], lang=record.get("lang", "id"))
            g.pop("staff", None)
            g.pop("studio_lang", None)
            log_action("studio.sign_in", target=record["username"], region=record["region"],
                       actor=record["username"])
            return redirect(safe_next(request.args.get("next", "")))
    return render_template("studio/login.html", error=error), 200 if not error else 401


@bp.post("/logout")
@require()
def logout():
    """Sign out."""
    log_action("studio.sign_out")
    session.clear()
    return redirect(url_for("studio.login"))


@bp.get("/")
@require()
def home():
    """The studio's start page: what this role can do."""
    return render_template("studio/home.html")


@bp.route("/account/password", methods=["GET", "POST"])
@require()
def password():
    """Change one's own password (required after a temporary one)."""
    error = ""
    record = g.staff_record
    if request.method == "POST":
        new = request.form.get("new", "")
        if not accounts._hasher_verify(record, request.form.get("current", "")):
            error = s_("The current password is wrong.")
        elif new != request.form.get("repeat", ""):
            error = s_("The two new passwords differ.")
        else:
            try:
                record = accounts.set_password(client(), province(), record, new)
            except accounts.AccountError as problem:
                error = s_(str(problem))
            else:
                session["gen"] = record["gen"]
                log_action("staff.password_changed", target=record["username"])
                return redirect(url_for("studio.home"))
    return render_template("studio/password.html", error=error, forced=record.get("must_change")), \
        200 if not error else 400


@bp.route("/account", methods=["GET", "POST"])
@require()
def account():
    """Language and the optional TOTP second factor."""
    record, error, secret = g.staff_record, "", ""
    if request.method == "POST":
        action = request.form.get("action")
        if action == "lang":
            lang = request.form.get("lang", "id")
            accounts.set_language(client(), province(), record, lang)
            session["lang"] = lang if lang in NAMES else "id"
            return redirect(url_for("studio.account"))
        if action == "totp_start":
            secret = accounts.new_totp_secret()
        elif action == "totp_confirm":
            secret = request.form.get("secret", "")
            if accounts.enable_totp(client(), province(), record, secret, request.form.get("code", "")):
                log_action("staff.totp_enabled", target=record["username"])
                return redirect(url_for("studio.account"))
            error = s_("The code from the authenticator app is wrong.")
        elif action == "totp_off":
            accounts.disable_totp(client(), province(), record)
            log_action("staff.totp_disabled", target=record["username"])
            return redirect(url_for("studio.account"))
    uri = ""
    if secret:
        import pyotp

        uri = pyotp.TOTP(secret).provisioning_uri(name=record["username"], issuer_name="Studio WiFi Bali")
    return render_template("studio/account.html", record=record, secret=secret, uri=uri, error=error)


def visible_staff(staff) -> list[dict]:
    """Accounts an administrator sees (all of the province; regions scoped by covers)."""
    return [r for r in accounts.all_staff(client(), province()) if staff.covers(r["region"])]


@bp.route("/staff", methods=["GET", "POST"])
@require("admin")
def staff():
    """List staff and create an account; the temporary password is shown once."""
    me = staff_access.current()
    created, password, error = None, "", ""
    if request.method == "POST":
        try:
            created, password = accounts.create(
                client(), province(), username=request.form.get("username", ""),
                role=request.form.get("role", ""), region=request.form.get("region", ""),
                lang=request.form.get("lang", "id"))
        except accounts.AccountError as problem:
            error = s_(str(problem))
        else:
            log_action("staff.create", target=created["username"], region=created["region"], new_role=created["role"])
    return render_template("studio/staff.html", people=visible_staff(me), roles=ROLES, created=created,
                           password=password, error=error), 400 if error else 200


@bp.post("/staff/<staff_id>/reset")
@require("admin")
def staff_reset(staff_id: str):
    """Give an account a new temporary password (and unlock it)."""
    record = accounts.get(client(), province(), staff_id)
    if record is None or not staff_access.current().covers(record["region"]):
        return message(s_("Not found, or outside your region."), 404)
    password = accounts.reset_password(client(), province(), record)
    log_action("staff.password_reset", target=record["username"], region=record["region"])
    return render_template("studio/staff.html", people=visible_staff(staff_access.current()), roles=ROLES,
                           created=record, password=password, error="", reset=True)
