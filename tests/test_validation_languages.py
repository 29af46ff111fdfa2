"""A bad complaint is sent back in the resident's language, with the input kept and errors linked."""
from __future__ import annotations

import pytest

from tests.test_accessibility import CONTROLS, Page

TYPED = 'Mati & "gelap"'  # too short, with characters HTML must escape
#: The message each bad field must show, per language.
EXPECTED = {
    "id": {
        "body": "Tulis 20 sampai 2000 huruf.",
        "consent": "Centang tanda setuju. Tanpa itu, laporan Anda tidak bisa dikirim.",
        "incident_date": "Tulis tanggal dengan urutan tahun-bulan-tanggal, misalnya 2026-11-29.",
        "contact": "Tulis nomor HP (seperti 0812 3456 7890) atau alamat e-mail.",
        "summary": "Tolong perbaiki ini:",
    },
    "en": {
        "body": "Write between 20 and 2000 characters.",
        "consent": "Please agree to the privacy notice, or your report cannot be sent.",
        "incident_date": "Write the date as year-month-day, for example 2026-11-29.",
        "contact": "Write a phone number (like 0812 3456 7890) or an e-mail address.",
        "summary": "Please correct these:",
    },
    "ban": {
        "body": "Tulis 20 kantos 2000 aksara.",
        "consent": "Indayang centang tanda satuju. Yening nenten, laporan ragane nenten prasida kakirim.",
        "incident_date": "Tulis tanggal sakadi warsa-sasih-tanggal, upami 2026-11-29.",
        "contact": "Tulis nomor HP (sakadi 0812 3456 7890) utawi alamat e-mail.",
        "summary": "Indayang becikang puniki:",
    },
}
BAD_FIELDS = ("body", "incident_date", "contact", "consent")


@pytest.fixture(params=sorted(EXPECTED))
def rejected(request, resident):
    """A complaint with four bad fields, sent in one language."""
    lang = request.param
    resident.arrive()  # the session starts in Indonesian; the form's hidden lang decides
    response = resident.submit(body=TYPED, consent=None, incident_date="29/11/2026",
                               contact="call me maybe", place="Depan balai banjar", lang=lang)
    return lang, response


def test_rejected_form_comes_back_in_its_language(rejected):
    lang, response = rejected
    assert response.status_code == 422
    page = Page(response.get_data(as_text=True))
    assert page.find("html")[0].attrs["lang"] == lang
    for name in BAD_FIELDS:
        error = page.by_id(f"{name}-error")
        assert error is not None, name
        assert error.text.strip() == EXPECTED[lang][name]


def test_each_error_sits_right_after_its_field(rejected):
    _, response = rejected
    page = Page(response.get_data(as_text=True))
    order = page.elements
    for name in BAD_FIELDS:
        control, error = page.by_id(name), page.by_id(f"{name}-error")
        start, end = order.index(control), order.index(error)
        assert start < end
        between = [e for e in order[start + 1:end] if e.tag in CONTROLS]
        assert not between, f"another control sits between {name} and its error"
        assert control.attrs.get("aria-invalid") == "true"
        assert f"{name}-error" in control.attrs.get("aria-describedby", "").split()


def test_typed_input_is_kept(rejected):
    _, response = rejected
    page = Page(response.get_data(as_text=True))
    assert page.by_id("body").text == TYPED
    assert page.by_id("incident_date").attrs["value"] == "29/11/2026"
    assert page.by_id("contact").attrs["value"] == "call me maybe"
    assert page.by_id("place").attrs["value"] == "Depan balai banjar"
    assert page.by_id("category").tag == "select"
    selected = [o for o in page.find("option") if "selected" in o.attrs]
    assert [o.attrs["value"] for o in selected] == ["kesehatan"]
    assert "checked" not in page.by_id("consent").attrs


def test_summary_at_the_top_links_to_each_field(rejected):
    lang, response = rejected
    page = Page(response.get_data(as_text=True))
    summaries = [e for e in page.elements if "summary" in e.classes()]
    assert len(summaries) == 1
    summary = summaries[0]
    form = page.find("form")[0]
    assert page.elements.index(summary) < page.elements.index(form), "the summary comes before the form"
    assert EXPECTED[lang]["summary"] in summary.text
    links = [e for e in page.elements if e.tag == "a" and summary in e.ancestors]
    targets = [a.attrs["href"] for a in links]
    assert sorted(targets) == sorted(f"#{name}" for name in BAD_FIELDS)
    for link in links:
        name = link.attrs["href"][1:]
        assert page.by_id(name) is not None
        assert EXPECTED[lang][name] in link.text


def test_a_valid_resubmission_in_the_same_language_gets_a_receipt(resident):
    resident.arrive()
    resident.submit(body="short", lang="ban")
    receipt = resident.submit(lang="ban")
    assert receipt.status_code == 200
    html = receipt.get_data(as_text=True)
    assert 'lang="ban"' in html and "Suksma. Laporan ragane sampun katampi." in html
