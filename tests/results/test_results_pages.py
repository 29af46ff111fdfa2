"""The staff results pages: scoped by region, SVG beside tables, CSV/JSON export, public open data."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re

from portal import audit

from .conftest import site_in, write_events

DAY = dt.date(2026, 11, 30)
ARGS = "from=2026-11-24&to=2026-11-30"


def seed(redis):
    write_events(redis, site_in("51.71"), DAY, {"impression": 137, "complaint": 11, "grant": 120}, variant="a")
    write_events(redis, site_in("51.71", 2), DAY, {"impression": 150, "complaint": 30, "grant": 90}, variant="b")
    write_events(redis, site_in("51.01"), DAY, {"impression": 4242, "complaint": 7, "grant": 4})


def test_sign_in_is_required(client):
    response = client.get("/studio/results/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/studio/login?next=")


def test_kabupaten_editor_sees_only_its_region(client, redis, as_staff):
    seed(redis)
    as_staff("editor", "5171")
    response = client.get(f"/studio/results/?{ARGS}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<svg" in html and "<table" in html and "Kota Denpasar" in html
    assert "287" in html            # 137 + 150 impressions in Denpasar
    assert "4242" not in html and "Jembrana" not in html
    assert "script" not in response.headers["Content-Security-Policy"].replace("script-src 'none'", "")
    assert re.search(r"style-src 'self' 'sha256-", response.headers["Content-Security-Policy"])
    # A/B: b complains more than a, with enough data to say so.
    assert "higher" in html
    other = client.get(f"/studio/results/?region=5101&{ARGS}")
    assert other.status_code == 403 and "4242" not in other.get_data(as_text=True)


def test_province_admin_sees_every_kabupaten(client, redis, as_staff):
    seed(redis)
    as_staff("admin", "51")
    html = client.get(f"/studio/results/?{ARGS}").get_data(as_text=True)
    assert "Kabupaten Jembrana" in html and "Kota Denpasar" in html and "4529" in html


def test_bad_parameters_get_a_clear_message(client, as_staff):
    as_staff("admin", "51")
    for query, text in (("from=yesterday", "dates like"), ("region=99", "region code"),
                        ("week=2026-W99", "week must"), ("from=2020-01-01&to=2026-01-01", "at most")):
        response = client.get(f"/studio/results/?{query}")
        assert response.status_code == 400 and text in response.get_data(as_text=True)


def test_export_csv_and_json_are_scoped_and_audited(client, redis, as_staff):
    seed(redis)
    as_staff("editor", "5171", username="ketut")
    data = client.get(f"/studio/results/export.json?{ARGS}").get_json()
    assert data["totals"]["impression"] == 287 and data["totals"]["complaint"] == 41
    assert abs(data["unique_devices"]["impression"] - 150) <= 3   # d0..d149 at both sites; HLL estimate
    verdicts = data["ab"][0]["rows"][1]["vs_first"]["complaint"]
    assert verdicts["verdict"] == "a_higher"            # variant b's complaint rate is higher than a's
    rows = list(csv.reader(io.StringIO(client.get(f"/studio/results/export.csv?{ARGS}").get_data(as_text=True))))
    assert rows[0][:3] == ["section", "key", "impression"] and rows[1][:3] == ["totals", "all", "287"]
    assert not any("5101" in cell for row in rows for cell in row)
    logged = audit.entries(redis, "51", action="results.export")
    assert [e["actor"] for e in logged] == ["ketut", "ketut"]
    assert client.get(f"/studio/results/export.json?region=5101&{ARGS}").status_code == 403


def test_open_data_suppresses_small_counts(client, redis):
    seed(redis)
    data = client.get(f"/open-data/funnel.json?{ARGS}").get_json()
    by_kab = {row["kabupaten_kode"]: row for row in data["rows"]}
    assert by_kab["5171"]["impression"] == 287 and by_kab["5171"]["complaint"] == 41
    assert by_kab["5101"]["complaint"] is None and by_kab["5101"]["grant"] is None   # 7 and 4: suppressed
    assert data["suppressed_below"] == 10 and "unique" not in str(data)
    text = client.get(f"/open-data/funnel.csv?{ARGS}").get_data(as_text=True)
    rows = {row[1]: row for row in csv.reader(io.StringIO(text))}
    assert rows["5101"][:5] == ["2026-W49", "5101", "Kabupaten Jembrana", "4242", ""]   # form: 0, suppressed
    assert client.get("/open-data/funnel.json?from=bad").status_code == 400


def test_pages_speak_the_language_chosen_in_the_studio(client, redis, as_staff):
    seed(redis)
    as_staff("editor", "5171", lang="id")
    html = client.get(f"/studio/results/?{ARGS}").get_data(as_text=True)  # the account's language
    assert '<html lang="id">' in html and all(w in html for w in ("Hasil", "Melihat kampanye", "Varian mana yang lebih baik"))
    english = client.get(f"/studio/results/?{ARGS}&lang=en").get_data(as_text=True)
    assert '<html lang="en">' in english and "Which variant did better" in english
    # The choice is kept in the studio session: the next staff page speaks it too.
    assert '<html lang="en">' in client.get("/studio/fleet/").get_data(as_text=True)
    assert "Kesehatan jaringan hotspot" in client.get("/studio/fleet/?lang=id").get_data(as_text=True)


def test_a_week_reads_monday_to_sunday_in_wita(client, redis, as_staff):
    seed(redis)  # 30 November 2026 is the Monday of ISO week 49
    write_events(redis, site_in("51.71"), dt.date(2026, 11, 29), {"impression": 5})  # Sunday of week 48
    as_staff("editor", "5171")
    data = client.get("/studio/results/export.json?week=2026-W49").get_json()
    assert (data["from"], data["to"]) == ("20261130", "20261206") and data["totals"]["impression"] == 287
    assert client.get("/studio/results/export.json?week=2026-W48").get_json()["totals"]["impression"] == 5
