"""The campaign workflow through the studio: draft, review by someone else, publication,
what residents of a targeted (and an untargeted) site see, rollback and the publish checks."""
from __future__ import annotations

import re

from portal import audit
from portal.campaigns import store
from portal.headers import inline_styles, style_hash
from tests.conftest import Resident
from tests.studio_helpers import StaffClient, campaign_form, make_staff

FESTIVAL = "Festival Makepung 2027"


def team(app, redis):
    make_staff(app, redis, "editor1", "editor", "51.01")
    make_staff(app, redis, "reviewer1", "reviewer", "51")
    return StaffClient(app, "editor1"), StaffClient(app, "reviewer1")


def landing(client, **changes) -> str:
    resident = Resident(client)
    return resident.arrive(**changes).get_data(as_text=True)


def test_draft_review_publish_rollback(app, redis, client):
    editor, reviewer = team(app, redis)
    saved = editor.post("/studio/campaigns/new", campaign_form())
    assert saved.status_code == 302, saved.text
    assert FESTIVAL not in landing(client), "a draft is not shown"
    assert editor.post("/studio/campaigns/festival-2027/submit").status_code == 302
    refused = editor.post("/studio/campaigns/festival-2027/approve")
    assert refused.status_code == 403, "an editor cannot approve"

    approved = reviewer.post("/studio/campaigns/festival-2027/approve")
    assert approved.status_code == 302, approved.text
    page = landing(client)
    assert FESTIVAL in page and "SP4N LAPOR!" not in page.split("<main")[1].split("btn-main")[0]
    english = client.get(re.search(r'href="(/p/[^"]+lang=en[^"]*)"', page).group(1).replace("&amp;", "&")).text
    assert "Makepung Festival 2027" in english

    # BALI-0003 lies in another desa: the untargeted site keeps the built-in campaign.
    with app.test_request_context("/"):
        from portal.campaigns import campaign_for

        other = app.extensions["portal_sites"].get(redis, "BALI-0003")
        assert campaign_for(other, "dev") == "sp4n-lapor-2026"

    # A second version, then rollback to the first in one action.
    editor.post("/studio/campaigns/festival-2027/edit",
                campaign_form(**{"A-id-headline": "Festival Makepung 2027: jadwal baru"}))
    editor.post("/studio/campaigns/festival-2027/submit")
    reviewer.post("/studio/campaigns/festival-2027/approve")
    assert "jadwal baru" in landing(client)
    versions = store.versions(redis, "51", "festival-2027")
    assert [v["version"] for v in versions] == [1, 2] and versions[0]["published_by"] == "reviewer1"
    assert versions[0]["content"]["A"]["id"]["headline"] == FESTIVAL, "published versions never change"
    assert editor.post("/studio/campaigns/festival-2027/rollback", {"version": "1"}).status_code == 302
    page = landing(client)
    assert FESTIVAL in page and "jadwal baru" not in page
    editor.post("/studio/campaigns/festival-2027/rollback", {"version": "0"})
    assert FESTIVAL not in landing(client)
    actions = [e["action"] for e in audit.entries(redis, "51")]
    for action in ("campaign.create", "campaign.submit", "campaign.publish", "campaign.rollback", "campaign.withdraw"):
        assert action in actions


def test_the_reviewer_must_not_be_the_author(app, redis):
    make_staff(app, redis, "admin1", "admin")
    admin = StaffClient(app, "admin1")
    admin.post("/studio/campaigns/new", campaign_form())
    admin.post("/studio/campaigns/festival-2027/submit")
    refused = admin.post("/studio/campaigns/festival-2027/approve")
    assert refused.status_code == 403 and "penulis" in refused.text
    assert store.versions(redis, "51", "festival-2027") == []


def test_publishing_refuses_missing_translation_outside_url_and_an_overweight_page(app, redis, monkeypatch):
    editor, reviewer = team(app, redis)
    form = campaign_form(**{"A-ban-body": "", "A-en-body": "See [the site](https://example.com/x)."})
    editor.post("/studio/campaigns/new", form)
    editor.post("/studio/campaigns/festival-2027/submit")
    refused = reviewer.post("/studio/campaigns/festival-2027/approve")
    assert refused.status_code == 422
    assert "A/ban/body" in refused.text and "https://example.com/x" in refused.text
    assert store.versions(redis, "51", "festival-2027") == []
    reviewer.post("/studio/campaigns/festival-2027/reject", {"reason": "lengkapi terjemahan"})
    fixed = editor.post("/studio/campaigns/festival-2027/edit", campaign_form())
    assert fixed.status_code == 302
    editor.post("/studio/campaigns/festival-2027/submit")
    # Text limits keep a real page well under 14 KB; a lower budget shows the check at work.
    from portal.studio import views_campaigns

    monkeypatch.setattr(views_campaigns, "PAGE_BUDGET", 1024)
    refused = reviewer.post("/studio/campaigns/festival-2027/approve")
    assert refused.status_code == 422 and "14 KB" in refused.text
    monkeypatch.setattr(views_campaigns, "PAGE_BUDGET", 14 * 1024)
    assert reviewer.post("/studio/campaigns/festival-2027/approve").status_code == 302


def test_bad_campaign_input_gets_clear_messages_not_a_500(app, redis):
    editor, _ = team(app, redis)
    page = editor.post("/studio/campaigns/new", campaign_form(
        id="X", **{"theme-fg": "#777777", "theme-bg": "#ffffff", "regions": "51.71", "start": "2026-13-01",
                   "priority": "abc", "cap": "-1", "hours_from": "25:00", "hours_to": "01:00"}))
    assert page.status_code == 400
    for text in ("Nama pendek", "kontras WCAG AA", "di luar wilayah Anda", "TTTT-BB-HH", "Prioritas",
                 "Batas frekuensi", "JJ:MM"):
        assert text in page.text, text


def test_a_published_campaign_stylesheet_is_allowed_by_the_page_policy(app, redis, client):
    editor, reviewer = team(app, redis)
    editor.post("/studio/campaigns/new", campaign_form(**{"theme-bg": "#fff8e1", "theme-accent": "#8a1c1c"}))
    editor.post("/studio/campaigns/festival-2027/submit")
    reviewer.post("/studio/campaigns/festival-2027/approve")
    response = Resident(client).arrive()
    styles = inline_styles(response.get_data())
    assert len(styles) == 2 and "#fff8e1" in styles[1]
    policy = response.headers["Content-Security-Policy"]
    assert all(style_hash(css) in policy for css in styles)
    assert "script-src 'none'" in policy


def test_preview_shows_the_real_page_for_a_site_language_and_time(app, redis):
    editor, _ = team(app, redis)
    editor.post("/studio/campaigns/new", campaign_form(hours_from="22:00", hours_to="02:00"))
    page = editor.get("/studio/campaigns/festival-2027/preview?site=BALI-0001&page_lang=en&at=2026-12-10T23:30")
    assert page.status_code == 200 and 'width="320"' in page.text and 'width="360"' in page.text
    assert "waktu ini mendapat kampanye ini" in page.text
    noon = editor.get("/studio/campaigns/festival-2027/preview?site=BALI-0001&at=2026-12-10T12:00")
    assert "jadwal tidak berjalan" in noon.text
    other = editor.get("/studio/campaigns/festival-2027/preview?site=BALI-0003")
    assert "tidak disasar" in other.text
    frame = editor.get("/studio/campaigns/festival-2027/preview/frame?site=BALI-0001&page_lang=en")
    assert "Makepung Festival 2027" in frame.text and "Wantilan Desa Adat Baler Bale Agung" in frame.text
    policy = frame.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in policy and "script-src 'none'" in policy
    assert all(style_hash(css) in policy for css in inline_styles(frame.get_data()))


def test_an_uploaded_image_is_re_encoded_and_served_from_the_portal(app, redis, client):
    import io

    from PIL import Image

    editor, reviewer = team(app, redis)
    png = io.BytesIO()
    Image.new("RGB", (1600, 900), "#2d6a4f").save(png, "PNG")
    form = campaign_form()
    form["image"] = (io.BytesIO(png.getvalue()), "poster.png")
    assert editor.post("/studio/campaigns/new", form, content_type="multipart/form-data").status_code == 302
    editor.post("/studio/campaigns/festival-2027/submit")
    reviewer.post("/studio/campaigns/festival-2027/approve")
    page = landing(client)
    src = re.search(r'<img src="(/c/img/[0-9a-f]+\.jpg)" alt="" width="640" height="360">', page).group(1)
    image = client.get(src)
    assert image.status_code == 200 and image.mimetype == "image/jpeg" and image.data[:3] == b"\xff\xd8\xff"
    assert client.get("/c/img/0000.jpg").status_code == 404
    bad = campaign_form("other-fest")
    bad["image"] = (io.BytesIO(b"GIF89a not really"), "x.gif")
    refused = editor.post("/studio/campaigns/new", bad, content_type="multipart/form-data")
    assert refused.status_code == 400 and "bukan gambar" in refused.text


def test_scheduled_publication_through_the_studio(app, redis, client):
    from portal.campaigns import campaign_for
    from portal.campaigns.schedule import wita_timestamp

    editor, reviewer = team(app, redis)
    editor.post("/studio/campaigns/new", campaign_form())
    editor.post("/studio/campaigns/festival-2027/submit")
    page = reviewer.post("/studio/campaigns/festival-2027/approve", {"publish_date": "2030-01-01", "publish_time": "08:00"},
                         follow_redirects=True)
    assert 'id="live">–<' in page.text and "2030-01-01 08:00" in page.text
    assert FESTIVAL not in landing(client), "not before its time"
    site = app.extensions["portal_sites"].get(redis, "BALI-0001")
    with app.test_request_context("/"):
        assert campaign_for(site, "dev", wita_timestamp("2030-01-01", "07:59")) == "sp4n-lapor-2026"
        assert campaign_for(site, "dev", wita_timestamp("2030-01-01", "08:00")).startswith("c:festival-2027:1:")


def test_auditors_view_and_export_the_log_scoped_to_their_region(app, redis):
    editor, reviewer = team(app, redis)
    editor.post("/studio/campaigns/new", campaign_form())
    make_staff(app, redis, "auditor-prov", "auditor", "51")
    make_staff(app, redis, "auditor-dps", "auditor", "51.71")
    auditor = StaffClient(app, "auditor-prov")
    page = auditor.get("/studio/audit?action=campaign.create")
    assert page.status_code == 200 and "festival-2027" in page.text and "studio.sign_in" not in page.text
    export = auditor.get("/studio/audit.csv")
    assert export.mimetype == "text/csv" and "campaign.create" in export.text
    assert "festival-2027" not in StaffClient(app, "auditor-dps").get("/studio/audit").text
    assert audit.entries(redis, "51", action="audit.export")[0]["actor"] == "auditor-prov"
    assert StaffClient(app, "editor1").get("/studio/audit").status_code == 403
