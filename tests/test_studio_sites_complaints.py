"""Studio sites (filter, settings, secrets never shown back, kit, CSV import with its report first)
and the complaint inbox (region scope, Anonim, held queue, CSV export honouring Anonim and Rahasia)."""
from __future__ import annotations

import csv
import io
import re

from portal import audit
from portal.complaints import store
from portal.sites import RECORDS, Site
from portal.tracking import normalize
from tests.conftest import DEMO_CSV, Resident, tracking_number
from tests.studio_helpers import StaffClient, make_staff

SECRET = "s3cret-faskey-value-123"


def test_sites_filter_settings_secret_and_kit(app, redis):
    make_staff(app, redis, "op1", "operator", "51.01")
    make_staff(app, redis, "ed1", "editor", "51.01")
    operator = StaffClient(app, "op1")
    listing = operator.get("/studio/sites?type=desa_adat&vendor=mikrotik")
    assert "BALI-0001" in listing.text and "BALI-0003" not in listing.text
    assert "BALI-0003" in operator.get("/studio/sites?unseen=1").text, "never seen"
    saved = operator.post("/studio/sites/BALI-0001/settings", {"minutes": "90", "router_hosts": "10.5.50.1"})
    assert saved.status_code == 302
    site = Site.from_json(redis.hget(RECORDS, "BALI-0001"))
    assert site.settings["minutes"] == 90 and site.settings["options"]["router_hosts"] == "10.5.50.1"
    bad = operator.post("/studio/sites/BALI-0001/settings", {"minutes": "lama", "router_hosts": "not a host!"})
    assert bad.status_code == 400 and "bilangan bulat" in bad.text and "router_hosts" in bad.text
    assert operator.post("/studio/sites/BALI-0003/secret", {"name": "faskey", "value": SECRET}).status_code == 302
    page = operator.get("/studio/sites/BALI-0003")
    assert SECRET not in page.text and "<code>faskey</code>: terisi" in page.text
    assert SECRET not in redis.hget(RECORDS, "BALI-0003").decode(), "sealed at rest"
    kit = operator.get("/studio/sites/BALI-0001/kit")
    assert kit.status_code == 200 and "Operator kit for site BALI-0001" in kit.text
    editor = StaffClient(app, "ed1")
    assert editor.get("/studio/sites/BALI-0001").status_code == 200
    assert editor.post("/studio/sites/BALI-0001/settings", {"minutes": "5"}).status_code == 403
    actions = [(e["action"], e["details"]) for e in audit.entries(redis, "51")]
    assert ("site.secret_set", {"name": "faskey"}) in actions
    assert all(SECRET not in str(a) for a in actions)


def test_csv_import_shows_its_report_before_anything_is_written(app, redis):
    make_staff(app, redis, "op-prov", "operator", "51")
    make_staff(app, redis, "op-dps", "operator", "51.71")
    operator = StaffClient(app, "op-prov")
    lines = DEMO_CSV.read_text(encoding="utf-8").splitlines()
    broken = "\n".join(lines[:4] + [lines[4].replace(",desa_adat,", ",kasino,")]) + "\n"
    report = operator.post("/studio/sites/import", {"file": (io.BytesIO(broken.encode()), "sites.csv")},
                           content_type="multipart/form-data")
    assert report.status_code == 400 and "kasino" not in report.text and "type must be one of" in report.text
    assert redis.hlen(RECORDS) == 2
    good = "\n".join(lines[:11]) + "\n"
    report = operator.post("/studio/sites/import", {"file": (io.BytesIO(good.encode()), "sites.csv")},
                           content_type="multipart/form-data")
    assert report.status_code == 200 and "10 baris sah" in report.text
    assert redis.hlen(RECORDS) == 2, "nothing written before the confirmation"
    token = re.search(r'name="token" value="([^"]+)"', report.text).group(1)
    done = operator.post("/studio/sites/import", {"token": token})
    assert 'id="import-done"' in done.text and redis.hlen(RECORDS) == 10 - 2 + 2  # BALI-0001, -0003 updated
    assert operator.post("/studio/sites/import", {"token": token}).status_code == 410, "a report is confirmed once"
    outside = StaffClient(app, "op-dps").post("/studio/sites/import",
                                              {"file": (io.BytesIO(good.encode()), "sites.csv")},
                                              content_type="multipart/form-data")
    assert outside.status_code == 400 and "di luar wilayah Anda" in outside.text


def file_complaints(client) -> tuple[str, str, str]:
    """A named confidential complaint, an anonymous one, and one the honeypot held."""
    named = Resident(client)
    named.arrive()
    first = tracking_number(named.submit(name="Ni Luh Sari", contact="0812 3456 7890", rahasia="y").text)
    anonymous = Resident(client)
    anonymous.arrive(mac="70:8A:09:65:4D:ED")
    second = tracking_number(anonymous.submit(name="Made Rahasia", contact="0813 0000 1111", anonim="y").text)
    bot = Resident(client)
    bot.arrive(mac="70:8A:09:65:4D:EE")
    third = tracking_number(bot.submit(website="http://spam.example").text)
    return normalize(first), normalize(second), normalize(third)


def test_inbox_scope_anonim_held_queue_and_export(app, redis, client):
    named, anonymous, held_one = file_complaints(client)
    make_staff(app, redis, "rev", "reviewer", "51")
    make_staff(app, redis, "ed-dps", "editor", "51.71")
    make_staff(app, redis, "ed-jbr", "editor", "51.01")
    reviewer = StaffClient(app, "rev")
    inbox = reviewer.get("/studio/complaints")
    assert all(t in inbox.text for t in (named, anonymous, held_one))
    assert named not in StaffClient(app, "ed-dps").get("/studio/complaints").text, "another kabupaten sees nothing"
    assert StaffClient(app, "ed-dps").get(f"/studio/complaints/{named}").status_code == 404
    assert named in StaffClient(app, "ed-jbr").get("/studio/complaints?kind=pengaduan").text

    detail = reviewer.get(f"/studio/complaints/{named}")
    assert "Ni Luh Sari" in detail.text and "Puskesmas tutup" in detail.text
    hidden = reviewer.get(f"/studio/complaints/{anonymous}")
    assert "Made Rahasia" not in hidden.text and "0813" not in hidden.text and "Anonim" in hidden.text

    held_page = reviewer.get("/studio/complaints?status=held")
    assert held_one in held_page.text and named not in held_page.text
    assert reviewer.post(f"/studio/complaints/{held_one}/review", {"action": "reject"}).status_code == 400
    assert reviewer.post(f"/studio/complaints/{held_one}/review", {"action": "release"}).status_code == 302
    assert store.read(redis, "51", held_one)["status"] == "received"
    assert reviewer.post(f"/studio/complaints/{held_one}/review", {"action": "release"}).status_code == 409

    export = reviewer.get("/studio/complaints.csv")
    rows = {r["tracking"]: r for r in csv.DictReader(io.StringIO(export.text))}
    assert rows[named]["name"] == "Ni Luh Sari" and rows[named]["body"] == "", "Rahasia: no text in the export"
    assert rows[anonymous]["name"] == "" and rows[anonymous]["contact"] == "", "Anonim: no identity"
    assert rows[anonymous]["body"].startswith("Puskesmas tutup")
    entries = audit.entries(redis, "51")
    assert {"complaint.view", "complaint.release", "complaints.export"} <= {e["action"] for e in entries}
    assert not [e for e in entries if "Ni Luh" in str(e) or "Puskesmas" in str(e)], "no personal data in the log"
