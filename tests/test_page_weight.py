"""Each page of the journey is self-contained, at most 14 KB gzipped, and asks no other host for anything."""
from __future__ import annotations

import gzip
import re
from urllib.parse import urlsplit

import pytest

from landing_pages import theme_css
from tests.test_accessibility import Page, journey_pages

LIMIT = 14 * 1024
URL_ATTRIBUTES = ("src", "href", "action", "formaction", "srcset", "poster", "data", "background", "cite")
ROUTER_LOGIN = "http://10.5.50.1/login"


def gzipped_size(html: str) -> int:
    """Bytes on the wire with gzip (level 6, like nginx and most proxies)."""
    return len(gzip.compress(html.encode("utf-8"), compresslevel=6))


def external_references(html: str, allowed: tuple[str, ...] = ()) -> list[str]:
    """Every URL on another host, or any resource that is not inline, except *allowed* prefixes."""
    page = Page(html)
    found = []
    for element in page.elements:
        if element.tag in ("link", "img", "iframe", "embed", "object", "video", "audio", "source"):
            found.append(f"<{element.tag}> {element.attrs}")
        if element.tag == "script" and element.attrs.get("src"):
            found.append(f"<script src={element.attrs['src']}>")
        for name in URL_ATTRIBUTES:
            value = (element.attrs.get(name) or "").strip()
            parts = urlsplit(value)
            if (parts.scheme or parts.netloc) and not value.startswith(allowed):
                found.append(f"<{element.tag} {name}={value}>")
        style = element.attrs.get("style", "")
        if re.search(r"url\(|@import", style, re.I):
            found.append(f"style attribute {style!r}")
    for style in page.find("style"):
        if re.search(r"url\(|@import", style.text, re.I):
            found.append("url() or @import in <style>")
    return found


def scripts(html: str) -> list[str]:
    """The text of each <script> element."""
    return [e.text for e in Page(html).find("script")]


def test_theme_has_no_imports_or_urls():
    assert not re.search(r"url\(|@import|@font-face", theme_css(), re.I)


def test_checker_catches_what_it_should():
    bad = ('<link rel="stylesheet" href="/x.css"><img src="http://cdn.test/a.png">'
           '<a href="https://evil.test/">x</a><style>b{background:url(a.png)}</style>')
    assert len(external_references(bad)) == 5
    assert gzipped_size("x" * 100_000) < LIMIT < gzipped_size(__import__("os").urandom(15_000).hex())


@pytest.mark.parametrize("lang", ["id", "en", "ban"])
def test_journey_pages_are_small_and_self_contained(resident, app, lang, record_property):
    rendered = journey_pages(resident, lang)
    lapor = app.config["LAPOR_URL"]
    for name in ("landing", "form", "errors", "receipt", "status", "lookup"):
        html = rendered[name]
        size = gzipped_size(html)
        record_property(f"{lang}-{name}-gzip", size)
        print(f"{lang} {name}: {len(html.encode())} bytes, {size} gzipped")
        assert size <= LIMIT, f"{lang} {name}: {size} bytes gzipped"
        assert external_references(html, allowed=(lapor,)) == [], name
        assert scripts(html) == [], f"{name}: the journey works without scripts"
        assert len(Page(html).find("style")) == 1, name
    # The privacy notice may link the DPO's address; nothing else leaves the portal.
    assert external_references(rendered["privacy"], allowed=("mailto:",)) == []


@pytest.fixture
def account_mode(app_config):
    """Sites log residents in with a shared hotspot account: the grant is an auto-submitting form."""
    app_config.update(MIKROTIK_LOGIN_MODE="account", MIKROTIK_USERNAME="warga", MIKROTIK_PASSWORD="pw")


def test_grant_page_posts_only_to_the_router_without_any_script(account_mode, resident):
    # A shared account logs in with CHAP only: the router sends its challenge.
    resident.arrive(**{"chap-id": "\\371", "chap-challenge": "\\357" * 16})
    response = resident.connect()
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert gzipped_size(html) <= LIMIT
    assert external_references(html, allowed=(ROUTER_LOGIN,)) == []
    assert [Page(html).find("form")[0].attrs["action"]] == [ROUTER_LOGIN]
    assert scripts(html) == []  # CSP script-src 'none': the resident taps the button
    assert Page(html).find("button", type="submit"), "the button that sends the login to the router"


def test_trial_grant_sends_the_browser_to_the_router_only(resident):
    resident.arrive()
    location = resident.connect().headers["Location"]
    assert location.startswith(ROUTER_LOGIN + "?")
