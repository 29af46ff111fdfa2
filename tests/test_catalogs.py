"""The message catalogs: every string a resident reads is translated into id and ban."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from portal.i18n import CATALOG_DIR, LANGUAGES

ROOT = Path(__file__).resolve().parent.parent
MAPPING = ROOT / "landing_pages" / "babel.cfg"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdif]")
TRANSLATED = ("id", "ban")


def code_msgids() -> set[str]:
    """Every msgid in the templates and portal/*.py, extracted with the project's babel.cfg."""
    with MAPPING.open() as handle:
        method_map, options_map = parse_mapping_cfg(handle, str(MAPPING))
    ids = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map):
        ids.update([message] if isinstance(message, str) else [m for m in message if m])
    return ids


def catalog(lang: str):
    """Parse a language's .po file, refusing any syntax error."""
    with (CATALOG_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, abort_invalid=True)


@pytest.fixture(scope="module")
def msgids() -> set[str]:
    return code_msgids()


def test_extraction_finds_templates_and_lazy_form_messages(msgids):
    assert "Report a problem" in msgids                    # a template
    assert "Choose a topic." in msgids                     # portal/complaints/form.py, through _l
    assert "Write between %(min)d and %(max)d characters." in msgids


@pytest.mark.parametrize("lang", LANGUAGES)
def test_each_catalog_parses_and_names_its_language(lang):
    parsed = catalog(lang)
    assert parsed.mime_headers and dict(parsed.mime_headers)["Language"] == lang
    assert len(parsed) > 0


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_code_string_is_translated(lang, msgids):
    parsed = catalog(lang)
    untranslated = sorted(m for m in msgids if not (parsed.get(m) and parsed.get(m).string))
    assert not untranslated, f"{lang}: run `make messages` and translate {untranslated}"
    fuzzy = sorted(m.id for m in parsed if m.id and m.fuzzy)
    assert not fuzzy, f"{lang}: fuzzy entries are ignored at run time: {fuzzy}"


@pytest.mark.parametrize("lang", TRANSLATED)
def test_placeholders_survive_translation(lang):
    for message in catalog(lang):
        if not message.id or not message.string:
            continue
        assert sorted(PLACEHOLDER.findall(message.string)) == sorted(PLACEHOLDER.findall(message.id)), message.id
        # Jinja applies `%` to every translated string: a lone % would break the page.
        assert "%" not in PLACEHOLDER.sub("", message.string), message.id


def test_english_catalog_covers_the_code_too(msgids):
    parsed = catalog("en")
    assert not sorted(m for m in msgids if m not in parsed)


def test_catalogs_hold_no_strings_the_code_dropped(msgids):
    for lang in LANGUAGES:
        stale = sorted(m.id for m in catalog(lang) if m.id and m.id not in msgids)
        assert not stale, f"{lang}: obsolete msgids, run `make messages`: {stale}"


def test_the_app_serves_each_language(resident):
    expected = {"id": "Laporkan masalah sekarang", "en": "Report a problem now",
                "ban": "Laporang pikobet mangkin"}
    for lang, text in expected.items():
        html = resident.arrive(lang=lang).get_data(as_text=True)
        assert f'<html lang="{lang}">' in html
        assert text in html
