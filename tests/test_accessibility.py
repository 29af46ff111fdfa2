"""WCAG 2.2 AA basics of the resident's pages: language, labels, errors, contrast, viewport, targets."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from landing_pages import theme_css
from tests.conftest import tracking_number

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
CONTROLS = {"input", "select", "textarea"}
LANGS = ("id", "en", "ban")


class Element:
    """One start tag: its name, attributes, ancestors and the text inside it."""

    def __init__(self, tag: str, attrs: dict, ancestors: list["Element"]):
        self.tag, self.attrs, self.ancestors = tag, attrs, ancestors
        self.text = ""

    def classes(self) -> set[str]:
        """The element's class names."""
        return set((self.attrs.get("class") or "").split())

    def inside(self, predicate) -> bool:
        """Whether any ancestor matches *predicate*."""
        return any(predicate(a) for a in self.ancestors)


class Page(HTMLParser):
    """Every element of a page, in source order, with its text (standard library only)."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[Element] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        element = Element(tag, dict(attrs), list(self._open))
        self.elements.append(element)
        if tag not in VOID:
            self._open.append(element)

    def handle_startendtag(self, tag, attrs):
        self.elements.append(Element(tag, dict(attrs), list(self._open)))

    def handle_endtag(self, tag):
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i].tag == tag:
                del self._open[i:]
                break

    def handle_data(self, data):
        for element in self._open:
            element.text += data

    def find(self, tag: str | None = None, **attrs) -> list[Element]:
        """Elements with this tag (any if None) and these exact attribute values."""
        return [e for e in self.elements if (tag is None or e.tag == tag)
                and all(e.attrs.get(k.rstrip("_")) == v for k, v in attrs.items())]

    def by_id(self, ident: str) -> Element | None:
        """The element with this id, or None."""
        found = self.find(id=ident)
        return found[0] if found else None


# --- CSS -----------------------------------------------------------------------------------

def css_rules(css: str) -> dict[str, dict[str, str]]:
    """Map each selector of a flat stylesheet to its declarations (later rules win)."""
    rules: dict[str, dict[str, str]] = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        declarations = dict(
            (k.strip(), v.strip()) for k, _, v in (d.partition(":") for d in body.split(";")) if v)
        for selector in selectors.split(","):
            rules.setdefault(selector.strip(), {}).update(declarations)
    return rules


def hex_colour(value: str) -> tuple[float, float, float]:
    """Parse #rgb or #rrggbb into 0..1 channels."""
    match = re.search(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})\b", value)
    assert match, f"not a hex colour: {value!r}"
    digits = match.group(1)
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return tuple(int(digits[i:i + 2], 16) / 255 for i in (0, 2, 4))


def luminance(rgb) -> float:
    """Relative luminance (WCAG 2.2)."""
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    """Contrast ratio of two CSS hex colours."""
    la, lb = sorted((luminance(hex_colour(a)), luminance(hex_colour(b))), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def pixels(value: str) -> float:
    """A CSS length in px (rem and em taken as 16px)."""
    number, unit = re.fullmatch(r"([\d.]+)(px|rem|em)?", value.split()[0].replace("!important", "")).groups()
    return float(number) * (16 if unit in ("rem", "em") else 1)


@pytest.fixture(scope="module")
def rules():
    return css_rules(theme_css())


def background(rules, selector: str) -> str:
    declarations = rules[selector]
    return declarations.get("background-color") or declarations["background"]


#: Text colour (selector) on background (selector) pairs the pages actually show.
PAIRS = [
    ("body", "body"), ("a", "body"), ("a", ".card"), ("a", ".summary"), ("a", ".notice"),
    ("body", ".card"), ("body", ".notice"), ("body", ".summary"),
    (".hint", "body"), (".hint", ".card"), (".hint", ".notice"), ("footer", "body"),
    (".error", "body"), (".error", ".card"), (".error", ".summary"),
    ("header", "header"), ("nav.lang a", "header"),
    (".btn-main", ".btn-main"), (".btn-alt", ".btn-alt"),
    ("input[type=text]", "input[type=text]"), (".steps li.done:before", "body"),
]


@pytest.mark.parametrize("fg,bg", PAIRS)
def test_text_contrast_is_at_least_4_5(rules, fg, bg):
    ratio = contrast(rules[fg]["color"], background(rules, bg))
    assert ratio >= 4.5, f"{fg} on {bg}: {ratio:.2f}"


def test_every_rule_with_colour_and_background_meets_4_5(rules):
    for selector, declarations in rules.items():
        bg = declarations.get("background-color") or declarations.get("background", "")
        if "color" in declarations and "#" in bg:
            assert contrast(declarations["color"], bg) >= 4.5, selector


def test_focus_outline_stands_out_3_to_1(rules):
    outline = rules["a:focus"]["outline"]
    for bg in ("body", ".card"):
        assert contrast(outline, background(rules, bg)) >= 3, bg


@pytest.mark.parametrize("selector", [
    ".btn", "input[type=text]", "input[type=date]", "select", "textarea", ".choice", "nav.lang a"])
def test_tap_targets_are_at_least_44px(rules, selector):
    assert pixels(rules[selector]["min-height"]) >= 44


# --- pages --------------------------------------------------------------------------------

def journey_pages(resident, lang: str) -> dict[str, str]:
    """The landing page, the form, the form with errors, the receipt and the status pages."""
    pages = {"landing": resident.arrive(lang=lang).get_data(as_text=True)}
    pages["form"] = resident.client.get(f"/p/{resident.token}/lapor?lang={lang}").get_data(as_text=True)
    pages["errors"] = resident.submit(body="short", consent=None, kind="", incident_date="x", contact="?",
                                      lang=lang).get_data(as_text=True)
    pages["receipt"] = resident.submit(lang=lang).get_data(as_text=True)
    number = tracking_number(pages["receipt"])
    pages["status"] = resident.client.get(f"/status/{number}?lang={lang}").get_data(as_text=True)
    pages["lookup"] = resident.client.get(f"/status?lang={lang}").get_data(as_text=True)
    pages["privacy"] = resident.client.get(f"/privacy?lang={lang}").get_data(as_text=True)
    return pages


@pytest.fixture(params=LANGS)
def pages(request, resident):
    return request.param, journey_pages(resident, request.param)


def test_html_lang_and_viewport(pages):
    lang, rendered = pages
    for name, html in rendered.items():
        page = Page(html)
        assert page.find("html")[0].attrs.get("lang") == lang, name
        viewport = page.find("meta", name="viewport")
        assert viewport, name
        content = viewport[0].attrs["content"].replace(" ", "")
        assert "width=device-width" in content, name
        assert "user-scalable=no" not in content and "maximum-scale=1" not in content, name


def labelled(page: Page, control: Element) -> bool:
    ident = control.attrs.get("id")
    if ident and any(label.attrs.get("for") == ident for label in page.find("label")):
        return True
    return control.inside(lambda a: a.tag == "label")


def test_every_control_has_a_label(pages):
    _, rendered = pages
    for name, html in rendered.items():
        page = Page(html)
        for control in (e for e in page.elements if e.tag in CONTROLS):
            if control.attrs.get("type") == "hidden":
                continue
            if control.inside(lambda a: a.attrs.get("aria-hidden") == "true"):
                assert control.attrs.get("tabindex") == "-1", f"{name}: a hidden honeypot must not take focus"
                continue
            assert labelled(page, control), f"{name}: {control.tag} {control.attrs} has no label"


def test_errors_are_linked_to_their_fields(pages):
    _, rendered = pages
    page = Page(rendered["errors"])
    errors = [e for e in page.elements if "error" in e.classes()]
    assert len(errors) >= 5
    described = {token for e in page.elements for token in e.attrs.get("aria-describedby", "").split()}
    for error in errors:
        assert error.attrs.get("id") in described, f"error {error.text!r} is not linked to its field"
    for control in page.elements:
        if control.attrs.get("aria-invalid") == "true":
            tokens = control.attrs.get("aria-describedby", "").split()
            assert tokens and all(page.by_id(t) for t in tokens), control.attrs
    summary = [e for e in page.elements if "summary" in e.classes()]
    assert summary and summary[0].attrs.get("role") == "alert"


def test_described_by_points_at_existing_elements(pages):
    _, rendered = pages
    for name, html in rendered.items():
        page = Page(html)
        for element in page.elements:
            for token in element.attrs.get("aria-describedby", "").split():
                assert page.by_id(token), f"{name}: aria-describedby={token!r} points nowhere"


def test_one_h1_per_page_and_a_main_landmark(pages):
    _, rendered = pages
    for name, html in rendered.items():
        page = Page(html)
        assert len(page.find("h1")) == 1, name
        assert len(page.find("main")) == 1, name
