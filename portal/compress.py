"""gzip on the weak link: pages are compressed for clients that accept it, with or without nginx.

A resident's phone on a busy hotspot is on the slowest link of the journey, and a landing
page of ~7.6 KB shrinks to ~2.6 KB. Level 6 of a page this size costs ~0.05–0.1 ms. Every page is
filled in per request (token, session copy, stamp), so the filled page is compressed as it
leaves: renders kept pre-compressed in pieces between their marks were measured
(``python -m tests.bench.precompress``): they sent twice the bytes for the CPU they saved, or
17% more bytes for more CPU. nginx in front (deploy/nginx) sees ``Content-Encoding`` and passes the
body on as it is.
"""
from __future__ import annotations

import gzip

from flask import Flask, request

MIN_BYTES = 512          # below this the gzip header costs more than it saves
LEVEL = 6
TYPES = ("text/html", "text/plain", "application/json", "application/captive+json")


def accepts_gzip() -> bool:
    """True when the request's ``Accept-Encoding`` allows gzip (a ``q=0`` refuses it)."""
    return gzip_accepted(request.environ.get("HTTP_ACCEPT_ENCODING", ""))


def gzip_accepted(accept_encoding: str) -> bool:
    """True when an ``Accept-Encoding`` value allows gzip (a ``q=0`` refuses it)."""
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip().lower()
            return not (q.startswith("q=") and q[2:].strip() in ("0", "0.0", "0.00", "0.000"))
    return False


def init_app(app: Flask) -> None:
    """Compress every eligible response as it leaves."""

    @app.after_request
    def gzip_response(response):
        headers = response.headers
        # Caches must not hand gzip to a client that cannot read it. Set directly, not through
        # response.vary: that parses and rebuilds the header on every request (issue 14).
        vary = headers.get("Vary")
        if not vary:
            headers["Vary"] = "Accept-Encoding"
        elif "accept-encoding" not in vary.lower():
            headers["Vary"] = vary + ", Accept-Encoding"
        if (not accepts_gzip() or response.direct_passthrough or response.is_streamed
                or "Content-Encoding" in headers or response.status_code < 200
                or response.status_code in (204, 304) or response.mimetype not in TYPES or request.method == "HEAD"):
            return response
        body = response.get_data()
        if len(body) < MIN_BYTES:
            return response
        response.set_data(gzip.compress(body, LEVEL, mtime=0))
        headers["Content-Encoding"] = "gzip"
        return response
