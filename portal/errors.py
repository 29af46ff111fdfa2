"""Error pages for residents: short, translated, and never a dead end."""
from __future__ import annotations

import logging
import secrets

from flask import Flask, g, render_template, request

from .i18n import choose_language

log = logging.getLogger(__name__)


def render_error(template: str, status: int, **context):
    """Render a resident-facing error page in the resident's language."""
    if "lang" not in g:
        g.lang = choose_language(request.args.get("lang"))
    return render_template(template, **context), status


def init_app(app: Flask) -> None:
    """Register the error handlers."""

    @app.errorhandler(404)
    def not_found(error):
        return render_error("errors/not_found.html", 404)

    @app.errorhandler(405)
    def not_allowed(error):
        return render_error("errors/not_found.html", 405)

    @app.errorhandler(400)
    def bad_request(error):
        return render_error("errors/bad_request.html", 400)

    @app.errorhandler(413)
    def too_large(error):
        return render_error("errors/bad_request.html", 413, too_large=True)

    @app.errorhandler(500)
    def server_error(error):
        reference = secrets.token_hex(4)
        # The route's pattern, never request.path: that holds the session token (/p/<token>/…).
        rule = request.url_rule.rule if request.url_rule else "(no route)"
        log.exception("unhandled error on %s %s, reference %s", request.method, rule, reference)
        return render_error("errors/server_error.html", 500, reference=reference)

    def log_exception(exc_info) -> None:
        """Flask's own line ("Exception on /p/<the token>/connect") is replaced by the one above."""

    app.log_exception = log_exception
