"""The complaint inbox for authorised staff, scoped by region: list and filter, the detail
(identity hidden when Anonim is set), delivery state and retry, the review queue of held
complaints (release or reject with a reason), and a CSV export honouring Anonim and Rahasia.

Every opening of a complaint, release, rejection and export is audited (ids and counts only).
"""
from __future__ import annotations

import csv
import io
import time

from flask import Response, abort, current_app, redirect, render_template, request, url_for

from .. import staff_access
from ..complaints import held, store
from ..crypto import InvalidToken, get_crypto
from ..delivery import state
from ..staff_access import require
from . import bp, client, log_action, message, province
from .i18n import s_

READERS = ("admin", "editor", "reviewer")
MODERATORS = ("admin", "reviewer")
SCAN = 2000  # newest stream entries the inbox looks at
EXPORT_FIELDS = ("tracking", "created_at", "kind", "category", "status", "kabupaten", "kecamatan", "desa",
                 "site_id", "anonim", "rahasia", "name", "contact", "body")


def region_of(record: dict) -> str:
    """The most precise region code a complaint names, else its site's desa, else ''."""
    for key in ("desa_kode", "kecamatan_kode", "kabupaten_kode"):
        if record.get(key):
            return record[key]
    site = current_app.extensions["portal_sites"].get(client(), record.get("site_id", ""))
    return site.desa_kode if site else ""


def visible(record: dict) -> bool:
    """Whether the signed-in staff member's region covers the complaint (the province sees all)."""
    me = staff_access.current()
    return me.region == province() or me.covers(region_of(record))


def recent_records() -> list[dict]:
    """The newest complaints (received and held), each once, newest first."""
    numbers = [fields[b"tracking"].decode() for _id, fields in client().xrevrange(store.stream_key(province()),
                                                                                      count=SCAN)]
    numbers += [m.decode() for m in client().zrevrange(store.held_key(province()), 0, SCAN - 1)]
    numbers = list(dict.fromkeys(numbers))
    with client().pipeline(transaction=False) as pipe:
        for tracking in numbers:
            pipe.hgetall(store.record_key(province(), tracking))
        raw = pipe.execute()
    records = [{k.decode(): v.decode() for k, v in r.items()} for r in raw if r]
    return sorted(records, key=lambda r: float(r.get("created_at") or 0), reverse=True)


def filtered() -> list[dict]:
    """Complaints in the staff member's region, filtered by region, type, dates and delivery state."""
    args = request.args
    region = args.get("region", "").strip()
    since = args.get("since", "")
    until = args.get("until", "")
    from ..campaigns.schedule import wita_timestamp

    low = wita_timestamp(since) if since else None
    high = wita_timestamp(until, "23:59") if until else None
    rows = []
    for r in recent_records():
        created = float(r.get("created_at") or 0)
        if not visible(r):
            continue
        code = region_of(r)
        if region and not (code == region or code.startswith(region + ".")):
            continue
        if args.get("kind") and r.get("kind") != args["kind"]:
            continue
        if args.get("status") and r.get("status") != args["status"]:
            continue
        if (low is not None and created < low) or (high is not None and created > high + 60):
            continue
        rows.append(r)
    return rows


def opened(record: dict) -> dict:
    """Text and identity of a complaint as staff may see them: identity hidden when Anonim is set."""
    crypto = get_crypto()
    text, identity = {}, {}
    try:
        text = crypto.unseal(record["sealed_text"]) if record.get("sealed_text") else {}
    except InvalidToken:
        text = {}
    if record.get("anonim") != "1" and record.get("sealed_contact"):
        try:
            identity = crypto.unseal(record["sealed_contact"])
        except InvalidToken:
            identity = {}
    return {"body": text.get("body", ""), "place": text.get("place", ""), "name": identity.get("name", ""),
            "contact": identity.get("contact", "")}


@bp.get("/complaints")
@require(*READERS)
def complaints():
    """The inbox."""
    rows = filtered()
    return render_template("studio/complaints.html", rows=rows[:300], total=len(rows), args=request.args,
                           held_count=held.count_held(client(), province()))


@bp.get("/complaints/<tracking>")
@require(*READERS)
def complaint(tracking: str):
    """One complaint with its delivery state; identity hidden when Anonim is set."""
    record = store.read(client(), province(), tracking.upper()) if tracking.isalnum() else None
    if record is None or not visible(record):
        abort(404)
    log_action("complaint.view", target=record["tracking"], region=region_of(record).replace(".", ""))
    return render_template("studio/complaint.html", r=record, text=opened(record),
                           delivery=state.read_state(client(), province(), record["tracking"]),
                           history=state.history(record),
                           retry_at=client().zscore(state.keys(province())["retry"], record["tracking"]))


@bp.post("/complaints/<tracking>/review")
@require(*MODERATORS)
def complaint_review(tracking: str):
    """Release a held complaint onto the delivery stream, or reject it with a reason."""
    record = store.read(client(), province(), tracking.upper()) if tracking.isalnum() else None
    if record is None or not visible(record):
        abort(404)
    back = url_for("studio.complaint", tracking=record["tracking"])
    action, reason = request.form.get("action"), (request.form.get("reason") or "").strip()
    if action == "release":
        done = held.release(client(), province(), record["tracking"])
    elif action == "reject" and reason:
        done = held.reject(client(), province(), record["tracking"], reason)
    else:
        return message(s_("Give a reason to reject a complaint."), 400, back=back)
    if not done:
        return message(s_("This complaint is no longer waiting for review."), 409, back=back)
    log_action("complaint.release" if action == "release" else "complaint.reject", target=record["tracking"],
               region=region_of(record).replace(".", ""), held_reason=record.get("held_reason", ""))
    return redirect(back)


@bp.get("/complaints.csv")
@require(*MODERATORS)
def complaints_export():
    """The filtered inbox as CSV: no identity for Anonim, no text for Rahasia."""
    rows = filtered()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_FIELDS)
    for r in rows:
        text = opened(r)
        values = {**r, **text, "created_at": time.strftime("%Y-%m-%d %H:%M", time.gmtime(float(r.get("created_at") or 0) + 8 * 3600))}
        if r.get("rahasia") == "1":
            values["body"] = ""  # confidential: the content stays in the portal
        writer.writerow([_cell(values.get(f, "")) for f in EXPORT_FIELDS])
    log_action("complaints.export", rows=len(rows))
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=complaints.csv"})


def _cell(value) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
