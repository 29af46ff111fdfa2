"""Pages rendered once per (page, language, site, …) with marks where each request's own values go.

Issue 10's rule holds: a page never carries another request's values. The shared render
is made from a placeholder session whose token, session copy and form stamp are marks, in
a request context of its own that carries no visitor's path or arguments; each request
then replaces the marks with its own values. ``tests/test_no_crossing.py`` checks it.
"""
from __future__ import annotations

from typing import Callable

from flask import current_app

TOKEN_MARK = "tok0page0mark0tok"
FALLBACK_MARK = "fb0page0mark0fb"
STAMP_MARK = "stamp0page0mark0stamp"
CACHE_SIZE = 8192  # (page, language, site, day) entries; cleared whole when full, as the landing cache


def filled(key: tuple, site, render_marked: Callable[[], str], values: dict[str, str]) -> str:
    """The cached render of *key* (made by *render_marked* on a miss) with each mark replaced by its value."""
    cache = current_app.extensions.setdefault("portal_page_cache", {})
    hit = cache.get(key)
    if hit is None or hit[0] is not site:  # a reloaded registry brings new Site objects
        if len(cache) >= CACHE_SIZE:
            cache.clear()
        hit = cache[key] = (site, render_marked())
    page = hit[1]
    for mark, value in values.items():
        page = page.replace(mark, value)
    return page
