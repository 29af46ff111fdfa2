"""The results dashboard in Debian's headless Chromium as a kabupaten editor: its region's figures only.

The editor signs in through the studio's own sign-in page; screenshots land in
docs/screenshots/ for the README.
"""
from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from portal import heartbeat
from portal.sites import import_sites, parse_csv
from tests.browser.servers import ServerThread
from tests.browser.test_chromium import SCREENSHOTS, chromium
from tests.browser.test_studio_chromium import sign_in
from tests.results.conftest import site_in, write_events
from tests.studio_helpers import PASSWORD, make_staff

pytestmark = pytest.mark.browser


DENPASAR = """site_id,name,type,kabupaten_kode,kabupaten,kecamatan_kode,kecamatan,desa_kode,desa,gateway_vendor,gateway_id
T5171-1,Balai Banjar Serangan,desa_adat,51.71,Kota Denpasar,51.71.01,Denpasar Selatan,51.71.01.1001,Serangan,opennds,dps-1
T5171-2,Puskesmas Pedungan,puskesmas,51.71,Kota Denpasar,51.71.01,Denpasar Selatan,51.71.01.1002,Pedungan,mikrotik,dps-2
T5171-3,Pasar Sesetan,pasar,51.71,Kota Denpasar,51.71.01,Denpasar Selatan,51.71.01.1003,Sesetan,omada,dps-3
"""


@pytest.fixture(scope="module")
def desktop(tmp_path_factory):
    driver = chromium(tmp_path_factory.mktemp("chromium-studio"), javascript=False, size=(1200, 1600))
    yield driver
    driver.quit()


def test_kabupaten_editor_sees_its_region_and_not_another(app, redis, desktop):
    day = dt.date.today() - dt.timedelta(days=1)
    write_events(redis, site_in("51.71"), day, {"impression": 321, "form": 40, "complaint": 12, "grant": 280},
                 campaign="ramah", variant="a")
    write_events(redis, site_in("51.71", 2), day, {"impression": 298, "form": 51, "complaint": 30, "grant": 240},
                 campaign="ramah", variant="b")
    write_events(redis, site_in("51.01"), day, {"impression": 7777, "complaint": 77, "grant": 7000})
    import_sites(redis, parse_csv(DENPASAR))
    now = time.time()
    for site_id, age in (("T5171-1", 30), ("T5171-2", 1500), ("T5171-3", 9000)):  # online, stale, offline
        heartbeat.record(redis, province="51", site_id=site_id, now=now - age)
    make_staff(app, redis, "made.denpasar", "editor", "51.71")  # staff pages default to Indonesian
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with ServerThread(app) as portal:
        sign_in(desktop, portal.url, "made.denpasar", PASSWORD)
        desktop.get(f"{portal.url}/studio/results/")
        assert "Kota Denpasar" in desktop.find_element(By.TAG_NAME, "h1").text
        funnel = desktop.find_element(By.ID, "funnel").text
        assert "619" in funnel and "7777" not in desktop.page_source and "Jembrana" not in desktop.page_source
        assert desktop.find_elements(By.CSS_SELECTOR, "svg rect")
        ab = desktop.find_element(By.CSS_SELECTOR, "table.ab").text
        assert "lebih tinggi" in ab  # variant b's complaint rate is clearly higher than a's
        desktop.save_screenshot(str(SCREENSHOTS / "results-funnel.png"))
        desktop.get(f"{portal.url}/studio/results/?region=5101")
        assert "di luar wilayah Anda" in desktop.page_source and "7777" not in desktop.page_source
        desktop.get(f"{portal.url}/studio/fleet/")
        summary = desktop.find_element(By.ID, "summary").text
        assert "3 lokasi" in summary and "1 luring" in summary and "BALI-0001" not in desktop.page_source
        desktop.save_screenshot(str(SCREENSHOTS / "results-fleet.png"))
    assert Path(SCREENSHOTS / "results-funnel.png").stat().st_size > 5000
