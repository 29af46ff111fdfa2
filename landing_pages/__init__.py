"""Templates, the theme, the default campaign and the message catalogs of the resident's pages."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TEMPLATES = ROOT / "templates"
THEMES = ROOT / "themes"

#: The built-in campaign: shown when no other is published, and whenever Redis is down.
DEFAULT_CAMPAIGN = "sp4n-lapor-2026"
CAMPAIGN_TEMPLATES = {DEFAULT_CAMPAIGN: "campaigns/default.html"}


@lru_cache(maxsize=8)
def theme_css(name: str = "default") -> str:
    """Return a theme's stylesheet with comments and spare whitespace removed, for inlining."""
    css = (THEMES / f"{name}.css").read_text(encoding="utf-8")
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    css = re.sub(r"\s+", " ", css)
    return re.sub(r"\s*([{}:;,>])\s*", r"\1", css).replace(";}", "}").strip()
