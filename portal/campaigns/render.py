"""A published campaign as a small Jinja template the landing page includes.

Everything staff wrote is escaped or sanitized first and its braces turned into character
references, so the template source holds no Jinja syntax but the language switch built here.
"""
from __future__ import annotations

from markupsafe import escape

from ..i18n import LANGUAGES
from .sanitize import jinja_inert, render_markdown


def campaign_css(campaign: dict) -> str:
    """The campaign's own stylesheet: its colours, scoped to its block."""
    t = campaign["theme"]
    border = "border:3px solid #b00020;" if campaign.get("emergency") else ""
    return (f".cmp{{background:{t['bg']};color:{t['fg']};padding:.6em;border-radius:6px;{border}}}"
            f".cmp h1{{color:{t['fg']}}}.cmp a{{color:{t['accent']}}}"
            f".card .btn-main{{background:{t['accent']};color:#fff}}.cmp img{{max-width:100%;height:auto}}")


def intro_html(campaign: dict, variant: str, lang: str) -> str:
    """What a resident reads first: headline, image, body and call to action, in *lang*."""
    text = campaign["content"][variant][lang]
    parts = [f'<div class="cmp{" emergency" if campaign.get("emergency") else ""}">',
             f'<h1 id="campaign-title">{escape(text["headline"])}</h1>']
    if campaign.get("image"):
        w, h = campaign.get("image_size") or (0, 0)
        parts.append(f'<img src="/c/img/{campaign["image"]}.jpg" alt="" width="{int(w)}" height="{int(h)}">')
    parts.append(render_markdown(text["body"]))
    if text.get("cta", "").strip():
        parts.append(f'<p class="cta"><strong>{escape(text["cta"])}</strong></p>')
    parts.append("</div>")
    # Character references mean nothing inside <style>: the stylesheet (built from validated
    # #rrggbb colours only) goes in a raw block instead of through jinja_inert.
    style = "{% raw %}<style>" + campaign_css(campaign) + "</style>{% endraw %}"
    return style + jinja_inert("".join(str(p) for p in parts))


def template_source(campaign: dict, variant: str) -> str:
    """The Jinja source of one variant, all languages (``lang`` and ``part`` come from the landing)."""
    branches = []
    for n, lang in enumerate(LANGUAGES):
        keyword = "if" if n == 0 else "elif"
        branches.append(f'{{% {keyword} lang == "{lang}" %}}{intro_html(campaign, variant, lang)}')
    fallback = intro_html(campaign, variant, LANGUAGES[0])
    return '{% if part == "intro" %}' + "".join(branches) + "{% else %}" + fallback + "{% endif %}{% endif %}"
