"""Operator kit (`sites config`), site settings and secrets CLI, and key rotation."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from portal import create_app
from portal.crypto import get_crypto
from portal.operator_kit import KitError, option_114
from portal.sites import RECORDS, Site, import_sites, parse_csv
from tests.conftest import DEMO_CSV, make_config

ROOT = Path(__file__).resolve().parent.parent  # this checkout
SECRET = "s3cr3t-Faskey-0123456789abcdef0123456789"


@pytest.fixture
def demo_sites(app, redis):
    """The whole demo CSV in the test Redis; one site id per vendor."""
    sites = parse_csv(DEMO_CSV.read_text(encoding="utf-8"))
    import_sites(redis, sites)
    app.extensions["portal_sites"].invalidate()
    first: dict[str, str] = {}
    for site in sites:
        first.setdefault(site.gateway_vendor, site.site_id)
    return first


def test_config_for_one_site_of_every_vendor(runner, demo_sites):
    assert set(demo_sites) == {"mikrotik", "opennds", "coovachilli", "unifi", "omada", "meraki", "wifidog", "pfsense"}
    for vendor, site_id in demo_sites.items():
        result = runner.invoke(args=["sites", "config", site_id])
        assert result.exit_code == 0, result.output
        out = result.output
        arrival = {"unifi": "https://portal.test/guest/s/default/",
                   "wifidog": "https://portal.test/wifidog/login/"}.get(vendor, f"https://portal.test/hotspot/{vendor}")
        assert f"Arrival URL: {arrival}" in out
        assert "https://portal.test/api/captive" in out
        assert "portal.test" in out and "lapor.go.id" in out
        assert "## Steps" in out and "1. " in out


def test_mikrotik_rsc_has_walled_garden_identity_and_option_114(runner, demo_sites, redis):
    out = runner.invoke(args=["sites", "config", demo_sites["mikrotik"]]).output
    site = Site.from_json(redis.hget(RECORDS, demo_sites["mikrotik"]))
    for host in ("portal.test", "www.lapor.go.id", "lapor.go.id"):
        assert f'/ip hotspot walled-garden add dst-host="{host}"' in out
        assert f'/ip hotspot walled-garden ip add action=accept dst-host="{host}"' in out
    assert f'/system identity set name="{site.gateway_id}"' in out
    assert "code=114" in out and "value=\"'https://portal.test/api/captive'\"" in out
    assert 'action="https://portal.test/hotspot/mikrotik"' in out and 'value="$(identity)"' in out


def test_option_114_is_at_most_255_bytes():
    assert len(option_114("https://wifi.baliprov.go.id").encode()) <= 255
    with pytest.raises(KitError, match="255"):
        option_114("https://" + "a" * 250 + ".id")


def test_the_kits_login_html_posts_router_variables_to_the_portal():
    from portal.operator_kit import _environment

    page = _environment().get_template("mikrotik_login.html").render(
        arrival_url="https://wifi.baliprov.go.id/hotspot/mikrotik")
    assert 'action="https://wifi.baliprov.go.id/hotspot/mikrotik"' in page
    assert 'method="post"' in page and "<noscript>" in page and "document.portal.submit()" in page
    for variable in ("identity", "mac", "ip", "link-login-only", "link-orig", "chap-id", "chap-challenge"):
        assert f'name="{variable}" value="$({variable})"' in page


def test_every_vendor_has_an_operator_page():
    for vendor in ("mikrotik", "opennds", "coovachilli", "unifi", "omada", "meraki", "wifidog", "pfsense"):
        text = (ROOT / "deploy" / "gateways" / f"{vendor}.md").read_text()
        assert {"unifi": "/guest/s/", "wifidog": "/wifidog/login/"}.get(vendor, f"/hotspot/{vendor}") in text


def test_secret_cli_never_prints_the_secret(runner, redis, app):
    result = runner.invoke(args=["sites", "secret", "set", "BALI-0003", "faskey"], input=SECRET + "\n")
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output and SECRET[:6] not in result.output
    record = redis.hget(RECORDS, "BALI-0003").decode()
    assert SECRET not in record  # sealed at rest
    listed = runner.invoke(args=["sites", "secret", "list", "BALI-0003"]).output
    assert listed.strip() == f"faskey = s3…({len(SECRET)} chars)"
    shown = runner.invoke(args=["sites", "show", "BALI-0003"]).output
    assert SECRET not in shown and "s3…(" in shown
    with app.app_context():
        assert get_crypto().unseal(Site.from_json(record).secrets) == {"faskey": SECRET}
    assert runner.invoke(args=["sites", "secret", "unset", "BALI-0003", "faskey"]).exit_code == 0
    assert Site.from_json(redis.hget(RECORDS, "BALI-0003")).secrets == ""


def test_sites_set_settings_and_options(runner, redis):
    result = runner.invoke(args=["sites", "set", "BALI-0001", "minutes=30", "login_mode=account",
                                 "controller_url=https://10.8.0.2:8443"])
    assert result.exit_code == 0, result.output
    site = Site.from_json(redis.hget(RECORDS, "BALI-0001"))
    assert site.settings == {"minutes": 30, "login_mode": "account",
                             "options": {"controller_url": "https://10.8.0.2:8443"}}
    refused = runner.invoke(args=["sites", "set", "BALI-0001", f"controller_password={SECRET}"])
    assert refused.exit_code != 0 and "sites secret set" in refused.output
    assert runner.invoke(args=["sites", "set", "BALI-0001", "minutes=abc"]).exit_code != 0
    runner.invoke(args=["sites", "set", "BALI-0001", "controller_url="])
    assert "options" not in Site.from_json(redis.hget(RECORDS, "BALI-0001")).settings


def test_router_hosts_and_authmon_key_are_checked_when_set(runner, redis):
    ok = runner.invoke(args=["sites", "set", "BALI-0003", "router_hosts=private,login.wifi,10.8.0.0/16"])
    assert ok.exit_code == 0, ok.output
    assert Site.from_json(redis.hget(RECORDS, "BALI-0003")).settings["options"]["router_hosts"] == \
        "private,login.wifi,10.8.0.0/16"
    bad = runner.invoke(args=["sites", "set", "BALI-0003", "router_hosts=private,http://x/,10.0.0.0/99"])
    assert bad.exit_code != 0 and "http://x/" in bad.output and "10.0.0.0/99" in bad.output
    key = runner.invoke(args=["sites", "secret", "set", "BALI-0003", "authmon_key"], input="a" * 32 + "\n")
    assert key.exit_code == 0 and "a" * 32 not in key.output


def test_rotation_reencrypts_and_old_key_can_go(redis, redis_server, tmp_path):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    first = create_app(make_config(redis_server.url, tmp_path / "a", DATA_KEYS=old))
    import_sites(redis, parse_csv(DEMO_CSV.read_text(encoding="utf-8")))
    assert first.test_cli_runner().invoke(args=["sites", "secret", "set", "BALI-0001", "password"],
                                          input=SECRET + "\n").exit_code == 0
    before = Site.from_json(redis.hget(RECORDS, "BALI-0001")).secrets
    both = create_app(make_config(redis_server.url, tmp_path / "b", DATA_KEYS=f"{new},{old}"))
    result = both.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0 and "site secrets: 1 re-encrypted" in result.output
    after = Site.from_json(redis.hget(RECORDS, "BALI-0001")).secrets
    assert after != before
    only_new = create_app(make_config(redis_server.url, tmp_path / "c", DATA_KEYS=new))
    with only_new.app_context():
        assert get_crypto().unseal(after) == {"password": SECRET}
        with pytest.raises(Exception):
            get_crypto().unseal(before)
    assert json.loads(redis.hget(RECORDS, "BALI-0001"))["site_id"] == "BALI-0001"
