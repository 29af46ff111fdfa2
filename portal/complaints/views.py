"""Blueprint for the complaint form and the receipt, inside a portal session."""
from __future__ import annotations

from flask import Blueprint, current_app, g, render_template, request
from markupsafe import escape

from hotspot_hooks import Arrival

from .. import limits, page_cache, sessions
from ..sessions import PortalSession
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
    if not session.durable:  # Redis is down: rare, render in full
        return render_form(prefilled_form(site), session, site)
    return page_cache.filled(form_key(g.lang), None, lambda: _render_marked_form(session), {
        page_cache.TOKEN_MARK: session.token,
        page_cache.FALLBACK_MARK: sessions.fallback_blob(session),
        page_cache.STAMP_MARK: service.new_form_stamp(),
        **place_values(site),
    })


# A blank form differs between residents only in the token, its copy and the stamp, and between
# sites only in the place fields it is prefilled with: one render per language and day, whatever
# the number of sites, with marks in the fields' values.
DESA_MARK = "desa0page0mark0desa"
KECAMATAN_MARK = "kec0page0mark0kec"
KABUPATEN_MARK = "kab0page0mark0kab"


def form_key(lang: str) -> tuple:
    """The page cache's key of the blank form in *lang* (the day: the form is prefilled with it)."""
    return ("form", lang, today_in_bali().isoformat())


def place_values(site) -> dict[str, str]:
    """The place fields' marks and *site*'s values for them, escaped as the form's inputs escape them."""
    if site is None:
        return {DESA_MARK: "", KECAMATAN_MARK: "", KABUPATEN_MARK: ""}
    return {DESA_MARK: str(escape(site.desa)), KECAMATAN_MARK: str(escape(site.kecamatan)),
            KABUPATEN_MARK: str(escape(site.kabupaten))}


def _render_marked_form(session) -> str:
    """The shared render of a blank form: a placeholder session and place, in a request of its own."""
    marked = PortalSession(token=page_cache.TOKEN_MARK, arrival=Arrival(vendor=session.arrival.vendor, gateway_id=""),
                           site_id="", lang=session.lang, campaign=session.campaign)
    with current_app.test_request_context(f"/p/{page_cache.TOKEN_MARK}/lapor", method="GET"):
        form = prefilled_form(None)
        form.desa.data, form.kecamatan.data, form.kabupaten.data = DESA_MARK, KECAMATAN_MARK, KABUPATEN_MARK
        form.started.data = page_cache.STAMP_MARK
        return render_template("complaints/form.html", form=form, problem="", kinds=KINDS, categories=CATEGORIES,
                               **page_context(marked, None, fallback=page_cache.FALLBACK_MARK))


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
    tracking = service.tracking_for(nonce)
    # Caught by the honeypot (autofill and assistive tools fill hidden fields too), the fill time
    # or a quota: kept for review and said so on the receipt, never dropped behind a receipt.
    check, reason = service.check_post(tracking, honeypot=form.website.data, started=started, session=session)
    if check.site_busy:
        # The site as a whole is flooding this minute: ask again, keeping what was typed.
        return render_form(form, session, site, problem="busy", status=429)
    if check.stored:
        # A double tap or a resent form: the same receipt, and no second count against the quota.
        return render_receipt(tracking, session, site, held=check.stored in ("held", "rejected"))
    if reason and not limits.held_allowed():
        # A flood of caught complaints from one address is not stored: no receipt, an honest "wait".
        return render_form(form, session, site, problem="busy", status=429)
    complaint = service.build(tracking=tracking, form=form, session=session, site=site)
    complaint.held_reason = reason
    service.save(complaint)
    return render_receipt(tracking, session, site, held=bool(reason))


def render_receipt(tracking: str, session, site, *, held: bool = False):
    if not session.durable:  # Redis is down: rare, render in full
        return _render_receipt(display(tracking), tracking, session, site, held=held)
    # Receipts differ only in the token, its copy and the tracking number (the page names no site).
    key = ("receipt", g.lang, held)
    return page_cache.filled(key, None, lambda: _render_marked_receipt(session, held), {
        page_cache.TOKEN_MARK: session.token,
        page_cache.FALLBACK_MARK: sessions.fallback_blob(session),
        TRACKING_MARK: display(tracking),
    })


TRACKING_MARK = "trk0page0mark0trk"


def _render_receipt(number: str, raw: str, session, site, *, held: bool, fallback: str | None = None) -> str:
    return render_template("complaints/receipt.html", tracking=number, tracking_raw=raw, held=held,
                           lapor_url=current_app.config["LAPOR_URL"], **page_context(session, site, fallback=fallback))


def _render_marked_receipt(session, held: bool) -> str:
    """The shared render of a receipt: a placeholder session and number, in a request of its own."""
    marked = PortalSession(token=page_cache.TOKEN_MARK, arrival=Arrival(vendor=session.arrival.vendor, gateway_id=""),
                           site_id="", lang=session.lang, campaign=session.campaign)
    with current_app.test_request_context(f"/p/{page_cache.TOKEN_MARK}/lapor", method="POST"):
        return _render_receipt(TRACKING_MARK, TRACKING_MARK, marked, None, held=held,
                               fallback=page_cache.FALLBACK_MARK)
