"""The campaign studio in Debian's headless Chromium, JavaScript off, against the dev server.

An administrator creates an editor and a reviewer (the temporary passwords show on the
page); the editor signs in, changes the password, writes a campaign in three languages
targeted at one desa and sends it to review; the reviewer approves it; a resident of the
targeted site sees it and a resident elsewhere does not; the campaign is rolled back to
its first version, then withdrawn. Screenshots land in docs/screenshots/studio-*.png.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from portal.sites import Site, save_site
from tests.browser.servers import ServerThread
from tests.browser.test_chromium import chromium, shrink_png, wait_for
from tests.conftest import MIKROTIK_ARRIVAL
from tests.studio_helpers import PASSWORD, make_staff

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DESKTOP = (1100, 1400)
TEXTS = {
    "id": ("Festival Makepung Jembrana 2027", "Datang dan saksikan **balap kerbau** di Negara."),
    "en": ("Jembrana Makepung Festival 2027", "Come and watch the **buffalo races** in Negara."),
    "ban": ("Festival Makepung Jembrana 2027 ring Negara", "Rauh tur tonton **balap kebo** ring Negara."),
}


def shot(driver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"studio-{name}.png"
    path.write_bytes(shrink_png(driver.get_screenshot_as_png()))
    return path


@pytest.fixture
def app_config(app_config):
    app_config["PUBLIC_URL"] = "http://127.0.0.1"  # the dev server speaks http: the studio cookie cannot be Secure
    return app_config


@pytest.fixture
def portal(app, redis):
    """The portal on loopback, with a third site in Kota Denpasar that the campaign does not target."""
    save_site(redis, Site(site_id="DPS-0001", name="Puskesmas Denpasar Selatan I", type="puskesmas",
                          kabupaten_kode="51.71", kabupaten="Kota Denpasar", kecamatan_kode="51.71.01",
                          kecamatan="Denpasar Selatan", desa_kode="51.71.01.1001", desa="Sesetan",
                          gateway_vendor="mikrotik", gateway_id="hs-dps-1"))
    make_staff(app, redis, "kepala", "admin")
    with ServerThread(app) as server:
        yield server.url


@pytest.fixture
def desk(tmp_path_factory):
    driver = chromium(tmp_path_factory.mktemp("studio-nojs"), javascript=False, size=DESKTOP)
    yield driver
    driver.quit()


@pytest.fixture
def phone(tmp_path_factory):
    driver = chromium(tmp_path_factory.mktemp("resident-nojs"), javascript=False)
    yield driver
    driver.quit()


def sign_in(driver, base: str, username: str, password: str) -> None:
    driver.get(f"{base}/studio/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    wait_for(driver, lambda d: "/studio/login" not in d.current_url)


def sign_out(driver) -> None:
    driver.find_element(By.CSS_SELECTOR, "header form button[type=submit]").click()
    wait_for(driver, EC.url_contains("/studio/login"))


def change_password(driver, temporary: str, new: str) -> None:
    assert driver.current_url.endswith("/studio/account/password"), "a temporary password must be changed first"
    driver.find_element(By.ID, "current").send_keys(temporary)
    driver.find_element(By.ID, "new").send_keys(new)
    driver.find_element(By.ID, "repeat").send_keys(new)
    driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    wait_for(driver, lambda d: d.current_url.endswith("/studio/"))


def create_staff(driver, base: str, username: str, role: str, region: str) -> str:
    driver.get(f"{base}/studio/staff")
    driver.find_element(By.ID, "new-username").send_keys(username)
    driver.find_element(By.CSS_SELECTOR, f"#new-role option[value={role}]").click()
    field = driver.find_element(By.ID, "new-region")
    field.clear()
    field.send_keys(region)
    driver.find_element(By.CSS_SELECTOR, "form[action='/studio/staff'] button[type=submit]").click()
    return wait_for(driver, EC.presence_of_element_located((By.ID, "temp-password"))).text


def resident_page(driver, base: str, identity: str, mac: str) -> str:
    driver.get(f"{base}/hotspot/mikrotik?" + urlencode(dict(MIKROTIK_ARRIVAL, identity=identity, mac=mac)))
    wait_for(driver, EC.presence_of_element_located((By.ID, "campaign-title")))
    return driver.find_element(By.ID, "campaign-title").text


def test_staff_pages_without_javascript_create_staff_and_show_the_temporary_password(desk, portal):
    sign_in(desk, portal, "kepala", PASSWORD)
    assert desk.find_element(By.TAG_NAME, "html").get_attribute("lang") == "id"
    temporary = create_staff(desk, portal, "wayan", "editor", "51.01")
    assert len(temporary) >= 12
    assert "wayan" in desk.find_element(By.TAG_NAME, "table").text
    shot(desk, "staff")
    desk.get(f"{portal}/studio/staff?lang=en")
    assert "Create account" in desk.page_source and temporary not in desk.page_source, "shown only once"
    desk.get(f"{portal}/studio/sites?lang=id&region=51.01")
    assert "BALI-0001" in desk.find_element(By.TAG_NAME, "table").text
    assert "DPS-0001" not in desk.find_element(By.TAG_NAME, "table").text, "filtered by region"
    shot(desk, "sites")


def test_publish_a_targeted_campaign_through_review_and_roll_it_back(desk, phone, portal, redis):
    sign_in(desk, portal, "kepala", PASSWORD)
    editor_temp = create_staff(desk, portal, "wayan", "editor", "51.01")
    reviewer_temp = create_staff(desk, portal, "made", "reviewer", "51")
    sign_out(desk)

    # The editor: first sign-in, new password, a campaign in three languages for one desa.
    sign_in(desk, portal, "wayan", editor_temp)
    change_password(desk, editor_temp, "wayan's own long password")
    desk.get(f"{portal}/studio/campaigns/new")
    desk.find_element(By.ID, "name").send_keys("Festival Makepung")
    desk.find_element(By.ID, "id").send_keys("makepung-2027")
    for lang, (headline, body) in TEXTS.items():
        desk.find_element(By.ID, f"A-{lang}-headline").send_keys(headline)
        desk.find_element(By.ID, f"A-{lang}-body").send_keys(body)
    desk.find_element(By.ID, "regions").send_keys("51.01.01.1006")
    desk.find_element(By.ID, "priority").clear()
    desk.find_element(By.ID, "priority").send_keys("20")
    shot(desk, "edit")
    desk.find_element(By.ID, "save").click()
    wait_for(desk, EC.presence_of_element_located((By.ID, "submit")))
    desk.find_element(By.ID, "preview").click()
    wait_for(desk, EC.presence_of_element_located((By.ID, "verdict")))
    assert "Baler Bale Agung" in desk.find_element(By.ID, "verdict").text
    shot(desk, "preview")
    desk.back()
    wait_for(desk, EC.presence_of_element_located((By.ID, "submit"))).click()
    wait_for(desk, EC.text_to_be_present_in_element((By.ID, "state"), "Dalam tinjauan"))
    assert not desk.find_elements(By.ID, "approve"), "an editor cannot approve"
    sign_out(desk)

    # Not yet published: residents still see the built-in campaign.
    assert "SP4N LAPOR!" in resident_page(phone, portal, "hs-5101011006-1", "70:8A:09:65:4D:01")

    # The reviewer, a second user, approves.
    sign_in(desk, portal, "made", reviewer_temp)
    change_password(desk, reviewer_temp, "made's own long password!")
    desk.get(f"{portal}/studio/campaigns/makepung-2027")
    shot(desk, "review")
    desk.find_element(By.ID, "approve").click()
    wait_for(desk, EC.text_to_be_present_in_element((By.ID, "live"), "1"))

    # A resident of the targeted site sees it, in each language; one in Denpasar does not.
    assert resident_page(phone, portal, "hs-5101011006-1", "70:8A:09:65:4D:02") == TEXTS["id"][0]
    shot(phone, "resident")
    phone.find_element(By.CSS_SELECTOR, "nav.lang a[hreflang=ban]").click()
    wait_for(phone, lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ban")
    assert phone.find_element(By.ID, "campaign-title").text == TEXTS["ban"][0]
    assert "SP4N LAPOR!" in resident_page(phone, portal, "hs-dps-1", "70:8A:09:65:4D:03")

    # A second version, then one action back to the first.
    sign_out(desk)
    sign_in(desk, portal, "wayan", "wayan's own long password")
    desk.get(f"{portal}/studio/campaigns/makepung-2027/edit")
    headline = desk.find_element(By.ID, "A-id-headline")
    headline.clear()
    headline.send_keys("Festival Makepung: jadwal baru")
    desk.find_element(By.ID, "save").click()
    wait_for(desk, EC.presence_of_element_located((By.ID, "submit"))).click()
    wait_for(desk, EC.text_to_be_present_in_element((By.ID, "state"), "Dalam tinjauan"))
    sign_out(desk)
    sign_in(desk, portal, "made", "made's own long password!")
    desk.get(f"{portal}/studio/campaigns/makepung-2027")
    desk.find_element(By.ID, "approve").click()
    wait_for(desk, EC.text_to_be_present_in_element((By.ID, "live"), "2"))
    assert resident_page(phone, portal, "hs-5101011006-1", "70:8A:09:65:4D:04") == "Festival Makepung: jadwal baru"
    desk.find_element(By.ID, "rollback-1").click()
    wait_for(desk, EC.text_to_be_present_in_element((By.ID, "live"), "1"))
    shot(desk, "versions")
    assert resident_page(phone, portal, "hs-5101011006-1", "70:8A:09:65:4D:05") == TEXTS["id"][0]
    desk.find_element(By.ID, "withdraw").click()
    wait_for(desk, EC.text_to_be_present_in_element((By.ID, "live"), "–"))
    assert "SP4N LAPOR!" in resident_page(phone, portal, "hs-5101011006-1", "70:8A:09:65:4D:06")
