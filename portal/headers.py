"""Security headers on every response the app makes, error pages included.

The resident's pages run no script at all and load nothing from elsewhere; their one
stylesheet is inline, allowed by its hash. A view that needs another policy (the
studio's preview frames) sets its own ``Content-Security-Policy``, which is left alone.
"""
from __future__ import annotations

import base64
import hashlib

from flask import Flask

from landing_pages import theme_css


def style_hash(css: str) -> str:
    """The CSP source that allows exactly this inline stylesheet."""
    digest = hashlib.sha256(css.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def resident_policy() -> str:
    """The Content-Security-Policy of the resident's pages."""
    return "; ".join((
        "default-src 'none'",
        "script-src 'none'",
        f"style-src {style_hash(theme_css())}",
        "img-src 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ))


def init_app(app: Flask) -> None:
    """Add the headers to every response."""
    fixed = {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }
    policy = resident_policy()

    @app.after_request
    def security_headers(response):
        headers = response.headers
        for name, value in fixed.items():
            headers.setdefault(name, value)
        headers.setdefault("Content-Security-Policy", policy)
        return response
