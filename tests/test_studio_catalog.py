"""The studio's catalog (domain ``studio``): every staff string is in Indonesian and English."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from portal.i18n import CATALOG_DIR
from portal.studio.i18n import LANGUAGES

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"s_": None, "S_": None}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdif]")


def studio_msgids() -> set[str]:
    """Every ``s_``/``S_`` message of the studio's templates and of portal/studio and portal/campaigns."""
    ids = set()
    for folder, method in (("portal/studio", "python"), ("portal/campaigns", "python"),
                           ("portal/studio/templates", "jinja2")):
        pattern = "**.html" if method == "jinja2" else "**.py"
        found = extract_from_dir(str(ROOT / folder), [(pattern, method)], keywords=KEYWORDS)
        ids.update(message for _f, _l, message, _c, _x in found if isinstance(message, str))
    return ids


def catalog(lang: str):
    with (CATALOG_DIR / lang / "LC_MESSAGES" / "studio.po").open("rb") as handle:
        return read_po(handle, abort_invalid=True)


def test_extraction_finds_templates_and_code():
    ids = studio_msgids()
    assert "Sign in" in ids                                                   # a template
    assert "That username is taken." in ids                                   # accounts.py, through S_
    assert "Text and background colours fail WCAG AA contrast (4.5:1)." in ids  # campaigns/model.py


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_studio_string_is_in_the_catalog(lang):
    parsed = catalog(lang)
    missing = sorted(m for m in studio_msgids() if not parsed.get(m) or (lang == "id" and not parsed.get(m).string))
    assert not missing, f"{lang}: translate {missing}"
    stale = sorted(m.id for m in parsed if m.id and m.id not in studio_msgids())
    assert not stale, f"{lang}: remove {stale}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_placeholders_survive_translation(lang):
    for message in catalog(lang):
        if message.id and message.string:
            assert sorted(PLACEHOLDER.findall(message.string)) == sorted(PLACEHOLDER.findall(message.id)), message.id
