"""Security headers on every response the app makes, error pages included.

The resident's pages run no script at all and load nothing from elsewhere; their
stylesheets are inline, each allowed by its hash: the theme's, and a published
campaign's own colours. A view that needs another policy (the studio's pages and
preview frames) sets its own ``Content-Security-Policy``, which is left alone.
"""
from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from flask import Flask

from landing_pages import theme_css


def style_hash(css: str) -> str:
    """The CSP source that allows exactly this inline stylesheet."""
    digest = hashlib.sha256(css.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def inline_styles(body: bytes) -> tuple[str, ...]:
    """Every inline stylesheet of an HTML body, in order, each once."""
    # bytes.find, not a regular expression: this runs on every page and find is several times faster.
    found = []
    start = body.find(b"<style>")
    while start != -1:
        end = body.find(b"</style>", start)
        if end == -1:
            break
        found.append(body[start + 7:end].decode("utf-8", "replace"))
        start = body.find(b"<style>", end)
    return tuple(dict.fromkeys(found))


@lru_cache(maxsize=512)
def resident_policy(styles: tuple[str, ...] | None = None) -> str:
    """The Content-Security-Policy of the resident's pages, allowing exactly *styles* (the theme's by default)."""
    sources = " ".join(style_hash(css) for css in (styles or (theme_css(),)))
    return "; ".join((
        "default-src 'none'",
        "script-src 'none'",
        f"style-src {sources}",
        "img-src 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ))


#: Headers of every response (a view may set its own value first).
FIXED = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    # A resident's pages carry the session token and its sealed copy in their links and forms:
    # no browser, phone or proxy cache may keep them (a shared phone, a caching proxy upstream).
    # A response that may be cached says so itself (captive detection, open data, images).
    ("Cache-Control", "no-store"),
)


def page_policy(body: bytes) -> str:
    """The Content-Security-Policy of a resident's HTML page *body*: its own inline stylesheets allowed."""
    return resident_policy(inline_styles(body) or None)


def init_app(app: Flask) -> None:
    """Add the headers to every response."""
    @app.after_request
    def security_headers(response):
        headers = response.headers
        for name, value in FIXED:
            headers.setdefault(name, value)
        if "Content-Security-Policy" not in headers:
            if response.mimetype == "text/html" and not response.is_streamed:
                headers["Content-Security-Policy"] = page_policy(response.get_data())
            else:
                headers["Content-Security-Policy"] = resident_policy(None)
        return response
