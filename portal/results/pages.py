"""What every staff results page shares: the stylesheet, its CSP, and guarded error answers."""
from __future__ import annotations

import csv
import io

from flask import Response, g, render_template

from ..headers import style_hash

CSS = """body{font-family:sans-serif;margin:1rem auto;max-width:72rem;padding:0 1rem;color:#111}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}th,td{border:1px solid #999;padding:.2rem .5rem;text-align:right}
th:first-child,td:first-child{text-align:left}.pair{display:flex;flex-wrap:wrap;gap:1.5rem;align-items:flex-start}
table.text td{text-align:left}.note{background:#fff6d5;padding:.4rem .6rem}.offline{color:#a00}.stale{color:#8a5a00}.online{color:#176b2c}
form.filters label{margin-right:.8rem}nav a{margin-right:1rem}"""

POLICY = "; ".join((
    "default-src 'none'", "script-src 'none'", f"style-src 'self' {style_hash(CSS)}", "img-src 'self'",
    "form-action 'self'", "base-uri 'none'", "frame-ancestors 'none'"))


def page(template: str, status: int = 200, **context) -> Response:
    """Render a staff page with its own stylesheet and policy."""
    response = Response(render_template(template, css=CSS, **context), status=status, mimetype="text/html")
    response.headers["Content-Security-Policy"] = POLICY
    response.headers["Cache-Control"] = "no-store"
    return response


def problem(message: str, status: int = 400) -> Response:
    """A clear message about a request that cannot be answered (never a 500)."""
    return page("results/problem.html", status=status, message=message)


def csv_response(rows: list[list], filename: str) -> Response:
    """Rows as a CSV download."""
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


def use_staff_language() -> None:
    """Staff pages speak the language chosen in the studio (Indonesian by default)."""
    # The studio's choice (``?lang=`` or the one kept in the studio session), so every staff
    # page of one visit speaks one language; Indonesian by default.
    from ..studio.i18n import studio_language

    g.lang = studio_language()
