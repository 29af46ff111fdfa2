"""Pages rendered once per (page, language, site, …) with marks where each request's own values go.

Issue 10's rule holds: a page never carries another request's values. The shared render
is made from a placeholder session whose token, session copy and form stamp are marks, in
a request context of its own that carries no visitor's path or arguments; each request
then replaces the marks with its own values. ``tests/test_no_crossing.py`` checks it.
"""
from __future__ import annotations

import re
from typing import Callable

from flask import current_app

TOKEN_MARK = "tok0page0mark0tok"
FALLBACK_MARK = "fb0page0mark0fb"
STAMP_MARK = "stamp0page0mark0stamp"
PAGES = "portal_page_cache"        # the pages' renders
PLACES = "portal_place_lines"      # the landing's "You are at ..." line per (site, language)
CACHE_SIZE = 8192  # (page, language, site, day) entries; cleared whole when full, as the landing cache


def cached(extensions: dict, key: tuple, site, *, store: str = PAGES) -> str | None:
    """The shared render of *key* for *site* if this process has it (no render on a miss)."""
    hit = extensions.get(store, {}).get(key)
    return hit[1] if hit is not None and hit[0] is site else None


#: Every mark has this shape (``tok0page0mark0tok``, ``desa0page0mark0desa``, …).
MARK = re.compile(r"([a-z]+0page0mark0[a-z]+)")
_PIECES: dict[str, list[str]] = {}  # render -> its text split at the marks (odd items are the marks)


def fill(page: str, values: dict[str, str]) -> str:
    """*page* with each mark replaced by its value (a value is never searched for marks itself)."""
    # Split once per render, then one join per request, instead of a pass over the page per mark.
    # The key is the render itself: the same string object, so the lookup compares no text.
    if not values:
        return page  # a piece with no marks (a site's place line): nothing to split or keep
    pieces = _PIECES.get(page)
    if pieces is None:
        if len(_PIECES) >= CACHE_SIZE:
            _PIECES.clear()
        pieces = _PIECES[page] = MARK.split(page)
    filled_in = pieces[:]
    for n in range(1, len(filled_in), 2):
        filled_in[n] = values.get(filled_in[n], filled_in[n])
    return "".join(filled_in)


def filled(key: tuple, site, render_marked: Callable[[], str], values: dict[str, str], *,
           store: str = PAGES) -> str:
    """The cached render of *key* (made by *render_marked* on a miss) with each mark replaced by its value.

    *store* names the cache (an app extension): small per-site pieces keep their own, so that
    many sites do not push the shared pages out.
    """
    cache = current_app.extensions.setdefault(store, {})
    hit = cache.get(key)
    if hit is None or hit[0] is not site:  # a reloaded registry brings new Site objects
        if len(cache) >= CACHE_SIZE:
            cache.clear()
        hit = cache[key] = (site, render_marked())
    return fill(hit[1], values)
