"""The public open-data export: funnel counts per kabupaten/kota and ISO week, small counts suppressed.

No sign-in. Only counts of the province's kabupaten/kota are published (no province total, no
finer areas), so a suppressed cell cannot be recovered by subtracting the others from a total.
A count below ``OPEN_DATA_MIN_COUNT`` (default 10) is published as null (JSON) or empty (CSV).
Unique-device counts are not published: they are estimates about people, not about the service.
"""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, current_app, jsonify, request

from .. import funnel
from ..events import STEPS
from ..redis import DOWN_ERRORS, raw_client
from .pages import csv_response
from .period import BadRequest, parse, region_name

bp = Blueprint("open_data", __name__, url_prefix="/open-data")
MAX_OPEN_DAYS = 92


def suppressed(count: int, minimum: int) -> int | None:
    """*count*, or None when it is small enough to point at a person."""
    return count if count >= minimum else None


def table(client, province: str, start: dt.date, end: dt.date, minimum: int) -> list[dict]:
    """One row per (ISO week, kabupaten/kota) with each step's suppressed count."""
    rows = []
    weeks: dict[str, list[str]] = {}
    for day in funnel.day_range(start, end):
        weeks.setdefault(funnel.week_of(day), []).append(day)
    # Children (kabupaten) are counted per day, not per day and week: read each week on its own.
    for week, days in sorted(weeks.items()):
        weekly = funnel.read(client, f"p{province}", days)
        for kab, steps in sorted(weekly.by_child.items()):
            if kab == "unknown":
                continue
            rows.append({"week": week, "kabupaten_kode": kab, "kabupaten": region_name(kab),
                         **{s: suppressed(steps[s], minimum) for s in STEPS}})
    return rows


@bp.get("/funnel.<fmt>")
def funnel_export(fmt: str):
    """Weekly counts per kabupaten/kota as JSON or CSV (``?from=&to=`` or ``?week=``, at most 92 days)."""
    if fmt not in ("json", "csv"):
        return jsonify(error="use funnel.json or funnel.csv"), 404
    province = current_app.config["PROVINCE"]
    try:
        query = parse(request.args, default_region=province, province=province)
    except BadRequest as error:
        return jsonify(error=str(error)), 400
    if len(query.days) > MAX_OPEN_DAYS:
        return jsonify(error=f"at most {MAX_OPEN_DAYS} days per request"), 400
    minimum = int(current_app.config["OPEN_DATA_MIN_COUNT"])
    try:
        rows = table(raw_client(), province, query.start, query.end, minimum)
    except DOWN_ERRORS:
        return jsonify(error="temporarily unavailable, try again later"), 503
    if fmt == "csv":
        header = ["week", "kabupaten_kode", "kabupaten", *STEPS]
        response = csv_response([header] + [[("" if r[c] is None else r[c]) for c in header] for r in rows],
                                "funnel.csv")
    else:
        response = jsonify(province=province, start=query.start.isoformat(), end=query.end.isoformat(),
                           timezone="WITA (UTC+8)", suppressed_below=minimum, steps=list(STEPS), rows=rows)
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
