"""The resident journey in Debian's headless Chromium with JavaScript off, at phone width.

A stand-in MikroTik router serves the operator kit's login.html; the portal app
runs on the test Redis. Screenshots of each language land in docs/screenshots/.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from portal.complaints import store
from portal.sites import RECORDS, Site, save_site
from portal.tracking import normalize
from tests.browser.servers import Router, ServerThread

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")
PHONE = (360, 740)
MACS = {"id": "70:8A:09:65:4D:E1", "en": "70:8A:09:65:4D:E2", "ban": "70:8A:09:65:4D:E3"}
BODY = "Lampu jalan di depan balai banjar mati sejak dua minggu, jalan gelap dan rawan."


def chromium(profile: Path, *, javascript: bool, size: tuple[int, int] = PHONE) -> webdriver.Chrome:
    """Start headless Chromium set up like an Indonesian phone, with or without JavaScript."""
    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={size[0]},{size[1]}")
    options.add_argument("--lang=id-ID")
    prefs = {"intl.accept_languages": "id-ID,id"}
    if not javascript:
        prefs["profile.managed_default_content_settings.javascript"] = 2
    options.add_experimental_option("prefs", prefs)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(20)
    # A desktop window cannot be narrower than 500px: emulate the phone's screen instead (DevTools, not JS).
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": True})
    return driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Chromium with JavaScript disabled, at 360×740."""
    driver = chromium(tmp_path_factory.mktemp("chromium-nojs"), javascript=False)
    yield driver
    driver.quit()


@pytest.fixture
def router(app, redis):
    """The portal and a stand-in router, each on its own loopback port."""
    # The stand-in router is on loopback, which no site allows by default: this one does.
    site = Site.from_json(redis.hget(RECORDS, "BALI-0001"))
    site.settings.setdefault("options", {})["router_hosts"] = "127.0.0.1"
    save_site(redis, site)
    hotspot = Router(mac=MACS["id"])
    with ServerThread(app) as portal, ServerThread(hotspot) as gateway:
        hotspot.portal_url, hotspot.base = portal.url, gateway.url
        yield hotspot


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    return struct.unpack(">II", path.read_bytes()[16:24])


def shrink_png(data: bytes) -> bytes:
    """Recompress a PNG's image data at zlib level 9 (same pixels, smaller file)."""
    out, pos, idat = [data[:8]], 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IDAT":
            idat += body
            continue
        if kind == b"IEND":
            packed = zlib.compress(zlib.decompress(idat), 9)
            out.append(struct.pack(">I", len(packed)) + b"IDAT" + packed
                       + struct.pack(">I", zlib.crc32(b"IDAT" + packed)))
        out.append(data[pos - 12 - length:pos])
    return b"".join(out)


def screenshot(driver, lang: str, page: str) -> Path:
    """Save what the phone shows as docs/screenshots/<lang>-<page>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{lang}-{page}.png"
    path.write_bytes(shrink_png(driver.get_screenshot_as_png()))
    return path


def wait_for(driver, condition, timeout: float = 15):
    """Wait until *condition* holds; a look-up that raced the page being replaced is tried again."""
    def settled(current):
        try:
            return condition(current)
        except WebDriverException as error:
            # Chromium 156 can answer a find_element made while a form's next page replaces the
            # document with "Node with given id does not belong to the document": not stale (which
            # the conditions already retry), but the same race.
            if "does not belong to the document" in str(error):
                return False
            raise
    return WebDriverWait(driver, timeout).until(settled)


def page_lang(driver) -> str:
    return driver.find_element(By.TAG_NAME, "html").get_attribute("lang")


@pytest.mark.parametrize("lang", ["id", "en", "ban"])
def test_journey_without_javascript(browser, router, redis, lang):
    router.mac = MACS[lang]
    browser.get(f"{router.base}/login.html")
    # JavaScript is off: login.html did not submit itself, so its <noscript> button shows.
    button = browser.find_element(By.CSS_SELECTOR, "form[name=portal] button[type=submit]")
    assert button.is_displayed() and browser.current_url.endswith("/login.html")
    button.click()
    wait_for(browser, EC.url_contains("/hotspot/mikrotik"))
    assert page_lang(browser) == "id", "Accept-Language id-ID picks Indonesian"
    assert "Wantilan Desa Adat Baler Bale Agung" in browser.page_source
    if lang != "id":
        browser.find_element(By.CSS_SELECTOR, f"nav.lang a[hreflang={lang}]").click()
        wait_for(browser, lambda d: page_lang(d) == lang)
    shot = screenshot(browser, lang, "landing")
    assert png_size(shot)[0] == PHONE[0]

    browser.find_element(By.CSS_SELECTOR, "main a.btn-main").click()
    wait_for(browser, EC.url_contains("/lapor"))
    assert page_lang(browser) == lang
    screenshot(browser, lang, "form")
    browser.find_element(By.ID, "kind-aspirasi").click()
    Select(browser.find_element(By.ID, "category")).select_by_value("infrastruktur")
    browser.find_element(By.ID, "body").send_keys(BODY)
    browser.find_element(By.ID, "consent").click()
    assert browser.find_element(By.ID, "consent").is_selected()
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()

    number = wait_for(browser, EC.presence_of_element_located((By.ID, "tracking-number"))).text
    assert page_lang(browser) == lang
    canonical = normalize(number)
    assert canonical, number
    record = store.read(redis, "51", canonical)
    assert record["kind"] == "aspirasi" and record["site_id"] == "BALI-0001"
    screenshot(browser, lang, "receipt")

    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    wait_for(browser, EC.presence_of_element_located((By.ID, "online")))
    assert browser.current_url.startswith(f"{router.base}/login?")
    assert len(router.logins) == 1
    assert router.logins[0]["username"] == [f"T-{MACS[lang]}"]
    assert router.logins[0]["dst"] == ["http://example.com/"]


def scroll_width(driver, what: str) -> int:
    """The page's full width, after checking the viewport really is 320px."""
    inner, full = driver.execute_script("return [window.innerWidth, document.documentElement.scrollWidth]")
    assert inner == 320, f"{what}: viewport is {inner}px, not 320px"
    return full


def test_no_horizontal_scroll_at_320px(router, tmp_path):
    """Measured with a separate, JavaScript-enabled Chromium: the pages themselves need no script."""
    driver = chromium(tmp_path / "chromium-js", javascript=True, size=(320, 740))
    try:
        for lang, mac in MACS.items():
            router.mac = mac
            driver.get(f"{router.base}/login.html")  # with JavaScript, login.html submits itself
            wait_for(driver, EC.url_contains("/hotspot/mikrotik"))
            form_url = driver.find_element(By.CSS_SELECTOR, "main a.btn-main").get_attribute("href")
            form_url = form_url.split("?")[0] + f"?lang={lang}"
            landing_url = form_url.split("/lapor")[0] + f"?lang={lang}"
            for page, url in (("landing", landing_url), ("form", form_url)):
                driver.get(url)
                assert page_lang(driver) == lang
                assert scroll_width(driver, f"{lang} {page}") <= 320, f"{lang} {page} scrolls sideways"
            driver.find_element(By.ID, "body").send_keys(BODY)
            driver.find_element(By.ID, "consent").click()
            driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
            wait_for(driver, EC.presence_of_element_located((By.ID, "tracking-number")))
            assert scroll_width(driver, f"{lang} receipt") <= 320, f"{lang} receipt scrolls sideways"
    finally:
        driver.quit()
