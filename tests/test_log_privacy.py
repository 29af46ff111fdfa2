"""What reaches logs: no client addresses and no session tokens (UU 27/2022)."""
from __future__ import annotations

import re
from pathlib import Path

NGINX = Path(__file__).resolve().parent.parent / "deploy" / "nginx"


def test_nginx_access_log_names_neither_the_client_nor_the_session_token():
    conf = (NGINX / "portal.conf").read_text(encoding="utf-8")
    log_format = re.search(r"log_format\s+portal_noip\s+'([^']*)'", conf).group(1)
    variables = set(re.findall(r"\$(\w+)", log_format))
    # $uri holds /p/<token>/…; $request and $request_uri also hold the query (heartbeat sig=, back=).
    assert not variables & {"remote_addr", "http_x_forwarded_for", "binary_remote_addr", "realip_remote_addr",
                            "request", "request_uri", "uri", "args", "query_string", "http_referer"}
    assert "portal_log_uri" in variables
    rules = re.search(r"map \$uri \$portal_log_uri \{(.*?)\}", conf, re.S).group(1)
    assert '"~^/p/[^/]+' in rules and '"~^/api/captive/.' in rules


def test_a_failed_grant_logs_no_client_address(resident, caplog, monkeypatch):
    from hotspot_hooks import ControllerRejectedError
    from hotspot_hooks.mikrotik import MikrotikHook

    def refuse(self, arrival, settings):
        # What RouterOS or a controller may echo back: the device in several spellings.
        raise ControllerRejectedError("router refused user portal-708a09654dec (70-8A-09-65-4D-EC, 708a.0965.4dec) "
                                      "at 10.5.50.253; router 10.5.50.1 kept")

    monkeypatch.setattr(MikrotikHook, "authorize", refuse)
    resident.arrive()
    with caplog.at_level("INFO"):
        assert resident.connect().status_code == 502
    assert "grant failed" in caplog.text and "router 10.5.50.1 kept" in caplog.text
    lowered = caplog.text.lower()
    for leak in ("708a09654dec", "70-8a-09-65-4d-ec", "708a.0965.4dec", "10.5.50.253"):
        assert leak not in lowered


def test_operator_kit_html_escapes_site_values():
    """The pfSense portal page is served to residents: a quote in a zone name must not break out."""
    from portal.operator_kit import build_kit
    from portal.sites import Site

    site = Site(site_id="BALI-PF", name="x", type="desa_adat", kabupaten_kode="51.01", kabupaten="k",
                kecamatan_kode="51.01.01", kecamatan="k", desa_kode="51.01.01.1006", desa="d",
                gateway_vendor="pfsense", gateway_id='zone"><script>alert(1)</script>')
    kit = build_kit(site, public_url="https://portal.test", lapor_url="https://www.lapor.go.id")
    page = "".join(kit.files.values())
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page
