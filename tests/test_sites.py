"""The site registry and `flask sites import`."""
from __future__ import annotations

from portal.sites import BY_GATEWAY, RECORDS, Site, save_site
from tests.conftest import DEMO_CSV, SITES_CSV


def test_import_demo_registry_is_idempotent(runner, redis):
    first = runner.invoke(args=["sites", "import", str(DEMO_CSV)])
    assert first.exit_code == 0, first.output
    assert "imported 2303 sites" in first.output
    assert redis.hlen(RECORDS) == 2303
    assert redis.hlen(BY_GATEWAY) == 2303
    snapshot = redis.hgetall(RECORDS)
    again = runner.invoke(args=["sites", "import", str(DEMO_CSV)])
    assert "(0 new, 2303 updated)" in again.output
    assert redis.hgetall(RECORDS) == snapshot


def test_bad_rows_are_reported_by_line_and_nothing_is_imported(runner, redis, tmp_path):
    redis.flushall()
    lines = SITES_CSV.strip().splitlines()
    bad = lines + [
        "BALI-0009,,desa_adat,51.01,Kabupaten Jembrana,51.01.01,Negara,51.01.01.1006,Baler Bale Agung,mikrotik,hs-9",
        "BALI-0010,Balai,desa_adat,51.99,Nowhere,51.01.01,Negara,51.01.01.1006,Baler Bale Agung,mikrotik,hs-10",
        "BALI-0011,Balai,desa_adat,51.02,Kabupaten Tabanan,51.01.01,Negara,51.01.01.1006,Baler Bale Agung,cisco,hs-11",
        "BALI-0001,Duplicate,desa_adat,51.01,Kabupaten Jembrana,51.01.01,Negara,51.01.01.1006,Baler Bale Agung,mikrotik,hs-12",
    ]
    path = tmp_path / "sites.csv"
    path.write_text("\n".join(bad) + "\n", encoding="utf-8")
    result = runner.invoke(args=["sites", "import", str(path)])
    assert result.exit_code != 0
    assert "sites.csv:4: name is required" in result.output
    assert "sites.csv:5: " in result.output and "51.99 is not a Bali region code" in result.output
    assert "sites.csv:6: " in result.output and "gateway_vendor must be one of" in result.output
    assert "kecamatan_kode 51.01.01 is not in kabupaten 51.02" in result.output
    assert "sites.csv:7: site_id BALI-0001 already on line 2" in result.output
    assert "nothing was imported" in result.output
    assert redis.hlen(RECORDS) == 0


def test_missing_columns_are_named(runner, tmp_path):
    path = tmp_path / "sites.csv"
    path.write_text("site_id,name\nA,B\n", encoding="utf-8")
    result = runner.invoke(args=["sites", "import", str(path)])
    assert result.exit_code != 0
    assert "missing column(s): type" in result.output


def test_reimport_keeps_settings_and_moves_the_gateway_index(runner, redis, app, tmp_path):
    site = Site.from_json(redis.hget(RECORDS, "BALI-0001"))
    save_site(redis, Site(**{**site.__dict__, "settings": {"minutes": 45}}))
    moved = SITES_CSV.replace("hs-5101011006-1", "hs-new-identity")
    path = tmp_path / "sites.csv"
    path.write_text(moved, encoding="utf-8")
    assert runner.invoke(args=["sites", "import", str(path)]).exit_code == 0
    site = Site.from_json(redis.hget(RECORDS, "BALI-0001"))
    assert site.settings == {"minutes": 45} and site.gateway_id == "hs-new-identity"
    assert redis.hget(BY_GATEWAY, "mikrotik|hs-new-identity") == b"BALI-0001"
    assert redis.hget(BY_GATEWAY, "mikrotik|hs-5101011006-1") is None


def test_registry_change_reaches_a_running_process(resident, redis, app, runner, tmp_path):
    resident.arrive(identity="hs-late")
    path = tmp_path / "late.csv"
    path.write_text(SITES_CSV.replace("hs-5101011006-1", "hs-late"), encoding="utf-8")
    runner.invoke(args=["sites", "import", str(path)])
    app.extensions["portal_sites"].invalidate()
    html = resident.arrive(identity="hs-late").get_data(as_text=True)
    assert "Wantilan Desa Adat Baler Bale Agung" in html
