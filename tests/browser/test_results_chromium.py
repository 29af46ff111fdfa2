"""The results dashboard in Debian's headless Chromium as a kabupaten editor: its region's figures only.

The staff member comes through the staff-access seam (the studio's sign-in replaces the
loader); screenshots land in docs/screenshots/ for the README.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from tests.browser.servers import ServerThread
from tests.browser.test_chromium import SCREENSHOTS, chromium
from tests.results.conftest import as_staff, site_in, write_events  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def desktop(tmp_path_factory):
    driver = chromium(tmp_path_factory.mktemp("chromium-studio"), javascript=False, size=(1200, 1600))
    yield driver
    driver.quit()


def test_kabupaten_editor_sees_its_region_and_not_another(app, redis, as_staff, desktop):  # noqa: F811
    day = dt.date.today() - dt.timedelta(days=1)
    write_events(redis, site_in("51.71"), day, {"impression": 321, "form": 40, "complaint": 12, "grant": 280},
                 campaign="ramah", variant="a")
    write_events(redis, site_in("51.71", 2), day, {"impression": 298, "form": 51, "complaint": 30, "grant": 240},
                 campaign="ramah", variant="b")
    write_events(redis, site_in("51.01"), day, {"impression": 7777, "complaint": 77, "grant": 7000})
    as_staff("editor", "5171", username="made.denpasar")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with ServerThread(app) as portal:
        desktop.get(f"{portal.url}/studio/results/")
        assert "Kota Denpasar" in desktop.find_element(By.TAG_NAME, "h1").text
        funnel = desktop.find_element(By.ID, "funnel").text
        assert "619" in funnel and "7777" not in desktop.page_source and "Jembrana" not in desktop.page_source
        assert desktop.find_elements(By.CSS_SELECTOR, "svg rect")
        ab = desktop.find_element(By.CSS_SELECTOR, "table.ab").text
        assert "higher" in ab  # variant b's complaint rate is clearly higher than a's
        desktop.save_screenshot(str(SCREENSHOTS / "results-funnel.png"))
        desktop.get(f"{portal.url}/studio/results/?region=5101")
        assert "outside your region" in desktop.page_source and "7777" not in desktop.page_source
        desktop.get(f"{portal.url}/studio/fleet/")
        assert "Fleet health" in desktop.page_source
        desktop.save_screenshot(str(SCREENSHOTS / "results-fleet.png"))
    assert Path(SCREENSHOTS / "results-funnel.png").stat().st_size > 5000
