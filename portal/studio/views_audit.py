"""The audit log: administrators and auditors view and export it (each export is logged too)."""
from __future__ import annotations

from flask import Response, render_template, request

from .. import audit, staff_access
from ..campaigns.schedule import wita, wita_timestamp
from ..staff_access import require
from . import bp, client, log_action, province

VIEWERS = ("admin", "auditor")


def filtered() -> list[dict]:
    """Entries in the viewer's region, filtered by the form's actor, action and WITA dates."""
    me = staff_access.current()
    since = wita_timestamp(request.args.get("since", "")) if request.args.get("since") else None
    until = wita_timestamp(request.args.get("until", ""), "23:59") if request.args.get("until") else None
    rows = audit.entries(client(), province(), since=since, until=until,
                         actor=request.args.get("actor") or None, action=request.args.get("action") or None)
    # Province-wide viewers see everything; a regional auditor sees actions in their region.
    return [r for r in rows if me.region == province() or me.covers(r.get("region", ""))]


@bp.get("/audit")
@require(*VIEWERS)
def audit_log():
    """Newest first, with filters."""
    return render_template("studio/audit.html", rows=filtered(), wita=wita)


@bp.get("/audit.csv")
@require(*VIEWERS)
def audit_export():
    """The filtered entries as CSV."""
    rows = filtered()
    log_action("audit.export", rows=len(rows))
    return Response(audit.to_csv(rows), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=audit.csv"})
