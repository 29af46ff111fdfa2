"""Blueprint for the complaint form and the receipt, inside a portal session."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from .. import limits, sessions
from ..visits import load_session_or_expired, page_context, site_of
from ..tracking import display
from . import service
from .form import CATEGORIES, KINDS, ComplaintForm, today_in_bali

bp = Blueprint("complaints", __name__)


def prefilled_form(site) -> ComplaintForm:
    """A fresh form with the place taken from the site and today's date."""
    form = ComplaintForm()
    form.incident_date.data = today_in_bali().isoformat()
    if site:
        form.desa.data, form.kecamatan.data, form.kabupaten.data = site.desa, site.kecamatan, site.kabupaten
    form.started.data = service.new_form_stamp()
    return form


def render_form(form: ComplaintForm, session, site, *, problem: str = "", status: int = 200):
    return render_template("complaints/form.html", form=form, problem=problem, kinds=KINDS, categories=CATEGORIES,
                           **page_context(session, site)), status


@bp.get("/p/<token>/lapor")
def complaint_form(token: str):
    """Show the quick complaint form."""
    session, error = load_session_or_expired(token)
    if error:
        return error
    if not limits.site_allows(session.site_id):
        limits.too_many_requests()
    site = site_of(session)
    service.record_form_opened(session)
    return render_form(prefilled_form(site), session, site)


@bp.post("/p/<token>/lapor")
def submit(token: str):
    """Validate and store a complaint, then show the receipt."""
    session, error = load_session_or_expired(token)
    if error:
        return error
    site = site_of(session)
    form = ComplaintForm(request.form)
    stamp = service.read_form_stamp(form.started.data)
    if stamp is None:
        form.started.data = service.new_form_stamp()
        return render_form(form, session, site, problem="expired", status=400)
    started, nonce = stamp
    if not form.validate():
        return render_form(form, session, site, status=422)
    if not limits.site_allows(session.site_id):
        # The site as a whole is flooding this minute: ask again, keeping what was typed.
        return render_form(form, session, site, problem="busy", status=429)
    tracking = service.tracking_for(nonce)
    stored = service.stored_status(tracking)
    if stored:
        # A double tap or a resent form: the same receipt, and no second count against the quota.
        return render_receipt(tracking, session, site, held=stored in ("held", "rejected"))
    # Caught by the honeypot (autofill and assistive tools fill hidden fields too), the fill time
    # or a quota: kept for review and said so on the receipt, never dropped behind a receipt.
    reason = service.hold_reason(honeypot=form.website.data, started=started, session=session)
    if reason and not limits.held_allowed():
        # A flood of caught complaints from one address is not stored: no receipt, an honest "wait".
        return render_form(form, session, site, problem="busy", status=429)
    complaint = service.build(tracking=tracking, form=form, session=session, site=site)
    complaint.held_reason = reason
    service.save(complaint)
    if tracking not in session.complaints:
        session.complaints.append(tracking)
        sessions.update(session)
    return render_receipt(tracking, session, site, held=bool(reason))


def render_receipt(tracking: str, session, site, *, held: bool = False):
    return render_template("complaints/receipt.html", tracking=display(tracking), tracking_raw=tracking, held=held,
                           lapor_url=current_app.config["LAPOR_URL"], **page_context(session, site))
