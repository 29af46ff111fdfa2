"""The public status page of a complaint: progress only, nothing personal."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from markupsafe import escape

from . import limits, page_cache, ride_along
from .complaints import store
from .i18n import LANGUAGE_NAMES, LANGUAGES, choose_language
from .redis import DOWN_ERRORS, get_redis, report_failure
from .tracking import display, normalize

bp = Blueprint("status", __name__)
STEPS = ("received", "forwarded", "answered")
WITA = timezone(timedelta(hours=8))
#: Record fields the status page may show; everything else stays out of the template.
PUBLIC_FIELDS = ("status", "kind", "created_at", "lapor_id", "lapor_url")


def public_view(record: dict) -> dict:
    """Reduce a complaint record to what anyone holding its number may see."""
    view = {k: record.get(k, "") for k in PUBLIC_FIELDS}
    view["history"] = [
        (step, datetime.fromtimestamp(float(at), WITA)) for step, at in json.loads(record.get("history", "[]"))
    ]
    status = record.get("status", "received")
    # A held or rejected report was received by the portal all the same; the page says which.
    reached = {step for step, _ in view["history"]} | {status, "received"}
    view["steps"] = [(step, step in reached) for step in STEPS]
    view["held"], view["rejected"] = status == "held", status == "rejected"
    return view


@bp.get("/status")
def lookup():
    """A form to type a tracking number."""
    g.lang = choose_language(request.args.get("lang"))
    number = request.args.get("tn", "")
    if number:
        canonical = normalize(number)
        if canonical:
            return redirect(url_for("status.show", number=display(canonical), lang=g.lang), code=303)
        return _page("status/lookup.html", 400, number=number, invalid=True)
    return _page("status/lookup.html", 200, number="", invalid=False)


@bp.get("/status/<number>")
def show(number: str):
    """Show where a complaint is: received, forwarded, answered."""
    g.lang = choose_language(request.args.get("lang"))
    # Counted here only (the lookup form redirects here): guessing numbers costs a lookup each.
    # The count rides on the record's round trip (or is taken after an invalid number's page).
    limits.queue_status_lookup()
    canonical = normalize(number)
    if canonical is None:
        return _page("status/lookup.html", 404, number=number, invalid=True)
    key = store.record_key(current_app.config["PROVINCE"], canonical)
    try:
        [raw] = ride_along.execute(get_redis(), lambda pipe: pipe.hgetall(key))
        record = {k.decode(): v.decode() for k, v in raw.items()} or None
    except DOWN_ERRORS:
        report_failure()
        return _page("status/unavailable.html", 503, number=display(canonical))
    if record is None:
        # Maybe still in the local spool: it will appear once Redis has it.
        return _page("status/lookup.html", 404, number=display(canonical), invalid=False, unknown=True)
    return _show_page(display(canonical), public_view(record)), 200


# A status page differs between complaints in the same state only in its number and LAPOR!
# id and address, so it is rendered once per (language, state) with marks there and filled in
# per request; the render sees a request of its own (issue 14, and issue 10's rule).
NUMBER_MARK = "num0page0mark0num"
LAPOR_ID_MARK = "lid0page0mark0lid"
LAPOR_URL_MARK = "lurl0page0mark0lurl"


def page_key(lang: str, view: dict) -> tuple:
    """The page cache's key of the status page of *view* in *lang*: what its shared render depends on."""
    return ("status", lang, tuple(view["steps"]), view["held"], view["rejected"], bool(view["lapor_id"]),
            bool(view["lapor_url"]))


def fill_values(number: str, view: dict) -> dict[str, str]:
    """The marks of a shared status render and this complaint's values for them, escaped."""
    return {
        NUMBER_MARK: str(escape(number)),
        LAPOR_ID_MARK: str(escape(view["lapor_id"])),
        LAPOR_URL_MARK: str(escape(view["lapor_url"])),
    }


def _show_page(number: str, view: dict) -> str:
    """The status page of *view*, from the render shared by every complaint in its state."""
    key = page_key(g.lang, view)

    def render_marked() -> str:
        marked = dict(view, lapor_id=LAPOR_ID_MARK if view["lapor_id"] else "",
                      lapor_url=LAPOR_URL_MARK if view["lapor_url"] else "", history=[])
        with current_app.test_request_context(f"/status/{NUMBER_MARK}", method="GET"):
            return _page("status/show.html", 200, number=NUMBER_MARK, complaint=marked)[0]

    return page_cache.filled(key, None, render_marked, fill_values(number, view))


def _page(template: str, status: int, **context):
    languages = [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES]
    return render_template(template, lang=g.lang, languages=languages, **context), status
