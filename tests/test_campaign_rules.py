"""Campaign rules without the studio: sanitizer, contrast, images, schedule across midnight WITA,
targeting, the published index, frequency cap and sticky A/B variants."""
from __future__ import annotations

import io
from html.parser import HTMLParser
from datetime import datetime

import pytest
from PIL import Image

from portal.campaigns import campaign_for, index, store
from portal.campaigns.contrast import passes_aa, ratio
from portal.campaigns.images import ImageRejected, reencode
from portal.campaigns.model import blank
from portal.campaigns.sanitize import TAGS, clean_html, outside_urls, render_markdown
from portal.campaigns.schedule import WITA, Schedule, Targeting
from portal.sites import Site
from landing_pages import DEFAULT_CAMPAIGN


def at(text: str) -> float:
    """A WITA wall-clock time as a unix time."""
    return datetime.fromisoformat(text).replace(tzinfo=WITA).timestamp()


# --- sanitizer -------------------------------------------------------------------------------

@pytest.mark.parametrize("source", [
    "<script>alert(1)</script>hello",
    "hello <img src=x onerror=alert(1)>",
    '<a href="#" onclick="alert(1)">x</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[pic](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![img](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<style>body{display:none}</style>text",
    '<svg><animate onbegin="alert(1)"/></svg>',
    '<iframe src="https://evil.example"></iframe>',
    "{{ config }} {% include 'x' %}",
])
def test_markdown_body_cannot_carry_script_styles_or_dangerous_urls(source):
    html = render_markdown(source)
    tags, attributes = parsed(html)
    assert tags <= TAGS, (source, html)
    for tag, name, value in attributes:
        assert (tag, name) in {("a", "href"), ("a", "rel")}, (source, html)
        assert not value.lower().startswith(("javascript:", "data:")), (source, html)
    assert "{{" not in render_jinja_inert(html) and "{%" not in render_jinja_inert(html)


def parsed(html: str):
    """The tags and (tag, attribute, value) triples a browser would build from *html*."""
    tags, attributes = set(), []

    class Collector(HTMLParser):
        def handle_starttag(self, tag, attrs):
            tags.add(tag)
            attributes.extend((tag, name, value or "") for name, value in attrs)

    Collector().feed(html)
    return tags, attributes


def render_jinja_inert(html: str) -> str:
    from portal.campaigns.sanitize import jinja_inert

    return jinja_inert(html)


def test_raw_html_through_the_cleaner_keeps_only_the_whitelist():
    html = clean_html('<p style="position:fixed" class="x"><b>a</b><strong>b</strong>'
                      '<a href="javascript:x" onmouseover="y">c</a><a href="/privacy">d</a></p>')
    assert html == '<p>a<strong>b</strong><a rel="noopener noreferrer">c</a>' \
                   '<a href="/privacy" rel="noopener noreferrer">d</a></p>'


def test_outside_links_are_found_for_the_publish_check():
    html = render_markdown("[a](https://evil.example) [b](/privacy) [c](//cdn.example/x) [d](tel:112)")
    assert outside_urls(html) == ["https://evil.example", "//cdn.example/x"]


# --- contrast and images ---------------------------------------------------------------------

def test_wcag_contrast():
    assert round(ratio("#000000", "#ffffff"), 1) == 21.0
    assert passes_aa("#1a1a1a", "#ffffff") and passes_aa("#ffffff", "#0b5394")
    assert not passes_aa("#777777", "#ffffff")  # 4.48:1, just under AA
    assert not passes_aa("#ffff00", "#ffffff")


def test_images_are_re_encoded_resized_and_refused_when_not_images():
    source = io.BytesIO()
    Image.new("RGB", (2000, 1500), "#336699").save(source, "PNG")
    jpeg, width, height = reencode(source.getvalue(), 40 * 1024)
    assert jpeg[:3] == b"\xff\xd8\xff" and (width, height) == (480, 360) and len(jpeg) <= 40 * 1024
    with pytest.raises(ImageRejected):
        reencode(b"<svg onload=alert(1)>", 40 * 1024)
    noisy = io.BytesIO()
    Image.frombytes("RGB", (640, 360), __import__("os").urandom(640 * 360 * 3)).save(noisy, "PNG")
    with pytest.raises(ImageRejected):
        reencode(noisy.getvalue(), 2 * 1024)  # cannot fit however hard it is squeezed


# --- schedule across midnight WITA -----------------------------------------------------------

def test_daily_hours_across_midnight_belong_to_the_evening_before():
    night = Schedule(start="2026-12-01", end="2026-12-31", hours_from="22:00", hours_to="02:00")
    assert night.active(at("2026-12-01T22:00"))
    assert night.active(at("2026-12-02T01:59"))
    assert not night.active(at("2026-12-02T02:00"))
    assert not night.active(at("2026-12-02T21:59"))
    assert not night.active(at("2026-12-01T01:00")), "before the first evening"
    assert night.active(at("2027-01-01T01:30")), "the last evening runs past midnight"
    assert not night.active(at("2027-01-01T22:30")), "after the last day"


def test_dates_are_wita_not_utc():
    day = Schedule(start="2026-12-25", end="2026-12-25")
    assert day.active(at("2026-12-25T00:00"))            # 24 Dec 16:00 UTC
    assert day.active(at("2026-12-25T23:59"))
    assert not day.active(at("2026-12-24T23:59"))
    assert not day.active(at("2026-12-26T00:00"))
    office = Schedule(hours_from="08:00", hours_to="16:00")
    assert office.active(at("2026-12-25T08:00")) and not office.active(at("2026-12-25T16:00"))


# --- targeting and the published index -------------------------------------------------------

def site(site_id="S1", desa="51.71.01.1001", kind="puskesmas") -> Site:
    kec, kab = desa.rsplit(".", 1)[0], desa.rsplit(".", 2)[0]
    return Site(site_id=site_id, name=site_id, type=kind, kabupaten_kode=kab, kabupaten="", kecamatan_kode=kec,
                kecamatan="", desa_kode=desa, desa="", gateway_vendor="mikrotik", gateway_id=site_id)


def test_targeting_by_region_level_type_and_site():
    kota = Targeting(regions=("51.71",), types=("puskesmas",), owner="5171")
    assert kota.matches(site()) and not kota.matches(site(kind="sekolah"))
    assert not kota.matches(site(desa="51.01.01.1006"))
    assert not Targeting(regions=("51.7",)).matches(site()), "a code prefix is not a region"
    single = Targeting(sites=("S9",), owner="5171")
    assert single.matches(site("S9", desa="51.01.01.1006")) and not single.matches(site())
    assert Targeting(owner="5171").matches(site()), "no targets: the owner's whole region"


def publish(redis, campaign_id, **changes):
    c = blank(changes.pop("region", "51"))
    c.update(id=campaign_id, name=campaign_id, author="a")
    for lang in ("id", "en", "ban"):
        c["content"]["A"][lang].update(headline=f"{campaign_id} A {lang}", body="a")
        c["content"]["B"][lang].update(headline=f"{campaign_id} B {lang}", body="b")
    for key, value in changes.items():
        c[key] = value if not isinstance(value, dict) else {**c[key], **value}
    publish_at = changes.get("publish_at")
    return store.publish(redis, "51", c, by="r", reviewed_by="r", publish_at=publish_at)


def choose(app, where, device="dev1", now=None):
    with app.test_request_context("/"):
        index().invalidate()
        return campaign_for(where, device, now)


def test_selection_honours_targeting_priority_emergency_and_schedule(app, redis):
    now = at("2026-12-10T12:00")
    publish(redis, "low", priority=1, targeting={"regions": ["51.71"]})
    publish(redis, "high", priority=50, targeting={"regions": ["51.71.01"], "types": ["puskesmas"]})
    assert choose(app, site(), now=now).startswith("c:high:1:")
    assert choose(app, site(kind="sekolah"), now=now).startswith("c:low:1:")
    assert choose(app, site(desa="51.01.01.1006"), now=now) == DEFAULT_CAMPAIGN
    publish(redis, "tsunami", priority=0, emergency=True, targeting={"regions": ["51.71"]},
            schedule={"end": "2026-12-10", "hours_from": "", "hours_to": ""})
    assert choose(app, site(), now=now).startswith("c:tsunami:1:"), "an emergency pre-empts every campaign"
    assert choose(app, site(), now=at("2026-12-11T00:00")).startswith("c:high:1:"), "until it expires"


def test_scheduled_publication_switches_over_by_itself(app, redis):
    publish(redis, "festival", targeting={"regions": ["51.71"]})
    later = at("2030-01-01T09:00")
    publish(redis, "festival", targeting={"regions": ["51.71"]}, publish_at=later)
    assert choose(app, site()).startswith("c:festival:1:")
    assert choose(app, site(), now=later + 1).startswith("c:festival:2:")


def test_frequency_cap_counts_per_device_per_wita_day(app, redis):
    publish(redis, "capped", cap=2, priority=9, targeting={"regions": ["51.71"]})
    now = at("2026-12-10T23:00")
    shown = [choose(app, site(), "devA", now) for _ in range(3)]
    assert [s.split(":")[1] if s.startswith("c:") else s for s in shown] == ["capped", "capped", DEFAULT_CAMPAIGN]
    assert choose(app, site(), "devB", now).startswith("c:capped:"), "another device has its own count"
    assert choose(app, site(), "devA", at("2026-12-11T00:30")).startswith("c:capped:"), "a new WITA day"
    assert not [k for k in redis.scan_iter("*cap*") if b"70:8A" in k.upper()]


def test_variants_are_sticky_per_device_and_follow_the_weights(app, redis):
    publish(redis, "abtest", weights={"A": 30, "B": 70}, targeting={"regions": ["51.71"]})
    devices = [f"device{n}" for n in range(400)]
    first = {d: choose(app, site(), d) for d in devices}
    assert all(choose(app, site(), d) == first[d] for d in devices[:50]), "the same device, the same variant"
    share_b = sum(v.endswith(":B") for v in first.values()) / len(devices)
    assert 0.6 < share_b < 0.8, share_b


def test_selection_fails_open_to_the_built_in_campaign(app, redis, redis_server):
    publish(redis, "broken", targeting={"regions": ["51.71"]})
    with app.test_request_context("/"):
        index().invalidate()
        index().refresh(redis)
        index().lookup[("a", "51.71", "*")][0].schedule = None  # a corrupt entry
        index()._checked = float("inf")  # keep the corrupt copy
        assert campaign_for(site(), "d") == DEFAULT_CAMPAIGN
        assert campaign_for(None, "d") == DEFAULT_CAMPAIGN


def test_theme_colours_cannot_smuggle_css():
    from portal.campaigns.model import validate

    c = blank("51")
    c.update(id="css-trick", name="x")
    for trick in ("red;}body{display:none", "#fff;background:url(/x)", "expression(alert(1))", "#ffffff</style>"):
        c["theme"] = {"bg": trick, "fg": "#1a1a1a", "accent": "#0b5394"}
        problems = validate(c, covers=lambda code: True, site_lookup=lambda s: None)
        assert ("theme", "Colours are written as #rrggbb.") in problems, trick


def test_the_campaign_template_holds_no_jinja_but_its_own():
    from portal.campaigns.render import template_source

    c = blank("51")
    c.update(id="jinja-trick", name="x")
    c["content"]["A"]["id"].update(headline="{{ config.SECRET_KEY }}", body="{% raw %}x{% endraw %} {#", cta="}}")
    source = template_source(c, "A")
    assert "config" in source and "{{ config" not in source and "{% raw %}x" not in source
