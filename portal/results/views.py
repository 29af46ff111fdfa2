"""Staff results pages: the funnel of a region and period, A/B results, CSV and JSON export."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from .. import abtest, audit, funnel, staff_access
from ..events import STEPS
from ..redis import DOWN_ERRORS, raw_client
from . import svg
from ..i18n import gettext as _
from ..i18n import lazy_gettext as _l
from .pages import csv_response, page, problem, use_staff_language
from .period import BadRequest, parse, region_name

bp = Blueprint("results", __name__, url_prefix="/studio/results")
bp.before_request(use_staff_language)

STEP_NAMES = {"impression": _l("Saw the campaign"), "form": _l("Opened the form"),
              "complaint": _l("Submitted a complaint"), "delivered": _l("Delivered"), "answered": _l("Answered"),
              "grant": _l("Went online")}


def _query():
    """The request's query, within the signed-in member's region; (query, None) or (None, response)."""
    staff = staff_access.current()
    province = current_app.config["PROVINCE"]
    try:
        query = parse(request.args, default_region=staff.region, province=province)
    except BadRequest as error:
        return None, problem(str(error))
    if not staff.covers(query.region):
        return None, problem(_("Region %(region)s is outside your region %(yours)s.", region=query.region,
                               yours=staff.region), 403)
    return query, None


def _report(query):
    report = funnel.read(raw_client(), query.scope, query.days, campaign=query.campaign)
    campaigns = sorted({campaign for campaign, _ in report.by_variant})
    ab = [abtest.variants_table(report.by_variant, campaign) for campaign in campaigns]
    return report, ab


@bp.get("/")
@staff_access.require()
def index():
    """The funnel page: charts with their tables."""
    query, error = _query()
    if error:
        return error
    try:
        report, ab = _report(query)
    except DOWN_ERRORS:
        return problem(_("The store is unreachable; try again in a minute."), 503)
    totals = [(str(STEP_NAMES[s]), report.totals[s]) for s in STEPS]
    days = query.days  # every day of the period, empty ones too
    series = {name: [report.by_day.get(d, {}).get(step, 0) for d in days]
              for step, name in (("impression", _("impressions")), ("complaint", _("complaints")),
                                 ("grant", _("grants")))}
    children = sorted(report.by_child.items())
    return page("results/funnel.html", staff=staff_access.current(), query=query, report=report, ab=ab,
                steps=STEPS, step_names=STEP_NAMES, region_name=region_name,
                funnel_chart=svg.bars(totals, title=_("Funnel")),
                day_chart=svg.columns([d[6:] + "/" + d[4:6] for d in days], series, title=_("By WITA day")),
                hour_chart=svg.columns([f"{h:02d}" for h in range(24)],
                                       {_("impressions"): [report.by_hour.get(f"{h:02d}", {}).get("impression", 0)
                                                           for h in range(24)]}, title=_("By WITA hour")),
                child_chart=svg.bars([(region_name(c), v["impression"]) for c, v in children],
                                     title=_("Impressions by area")),
                children=children)


@bp.get("/export.<fmt>")
@staff_access.require()
def export(fmt: str):
    """The same figures as CSV or JSON (the export is audited)."""
    if fmt not in ("csv", "json"):
        return problem(_("Export as .csv or .json."), 404)
    query, error = _query()
    if error:
        return error
    staff = staff_access.current()
    try:
        report, ab = _report(query)
        audit.record(raw_client(), current_app.config["PROVINCE"], actor=staff.username, role=staff.role,
                     action="results.export", target=query.scope, region=query.region, format=fmt,
                     start=query.start.isoformat(), end=query.end.isoformat())
    except DOWN_ERRORS:
        return problem(_("The store is unreachable; try again in a minute."), 503)
    name = f"funnel-{query.region}-{query.start.isoformat()}-{query.end.isoformat()}"
    if fmt == "json":
        data = report.as_dict()
        data["ab"] = [_ab_plain(table) for table in ab]
        response = jsonify(data)
        response.headers["Content-Disposition"] = f'attachment; filename="{name}.json"'
        return response
    return csv_response(to_rows(report), f"{name}.csv")


def to_rows(report) -> list[list]:
    """The report as CSV rows: section, key, then one column per step."""
    rows = [["section", "key", *STEPS], ["totals", "all", *(report.totals[s] for s in STEPS)],
            ["unique_devices", "all", *(report.uniques[s] for s in STEPS)]]
    for section in ("by_variant", "by_lang", "by_type", "by_day", "by_week", "by_hour", "by_child"):
        for key, steps in sorted(getattr(report, section).items()):
            label = " / ".join(key) if isinstance(key, tuple) else key
            rows.append([section, label, *(steps[s] for s in STEPS)])
    return rows


def _ab_plain(table: dict) -> dict:
    rows = []
    for row in table["rows"]:
        plain = {"variant": row["variant"], "impressions": row["impressions"]}
        for step in ("complaint", "grant"):
            r = row[step]
            plain[step] = {"count": r.successes, "rate": r.value, "low": r.low, "high": r.high}
        if "vs_first" in row:
            plain["vs_first"] = row["vs_first"]
        rows.append(plain)
    return {"campaign": table["campaign"], "confidence": table["confidence"], "rows": rows}
