"""Campaign bodies: Markdown rendered to HTML, then cleaned by a maintained sanitizer (nh3).

Raw HTML in the Markdown is not rendered at all (shown as text), and whatever the
renderer makes passes nh3 with a short list of tags and no attributes but ``href``:
no script, no event handler, no ``style``, no ``javascript:`` or ``data:`` URL.
"""
from __future__ import annotations

import re

import nh3
from markdown_it import MarkdownIt

TAGS = {"p", "br", "strong", "em", "ul", "ol", "li", "a", "h2", "h3", "blockquote", "code"}
ATTRIBUTES = {"a": {"href"}}
URL_SCHEMES = {"http", "https", "tel", "mailto"}  # outside http(s) URLs are kept so publishing can name them
_OUTSIDE = re.compile(r'href="((?:[a-z][a-z0-9+.-]*:)?//[^"]*)"', re.I)

_markdown = MarkdownIt("commonmark", {"html": False}).disable("image")


def clean_html(html: str) -> str:
    """Sanitize an HTML fragment to the campaign whitelist."""
    return nh3.clean(html, tags=TAGS, attributes=ATTRIBUTES, url_schemes=URL_SCHEMES,
                     link_rel="noopener noreferrer", strip_comments=True,
                     clean_content_tags={"script", "style"})


def render_markdown(text: str) -> str:
    """Render a campaign body (Markdown) to sanitized HTML."""
    return clean_html(_markdown.render(text or ""))


def outside_urls(html: str) -> list[str]:
    """Absolute http(s) or protocol-relative links in sanitized HTML: residents are not online yet."""
    return _OUTSIDE.findall(html)


def jinja_inert(html: str) -> str:
    """*html* with braces as character references, so a template built around it sees no Jinja syntax."""
    return html.replace("{", "&#123;").replace("}", "&#125;")
