"""No page carries another visitor's values: two residents at one site, every vendor, every language.

The landing page is rendered once per (campaign, language, site) and shared, so the first
visitor's token, fallback copy, MAC, IP or arrival arguments must never be in what the
second one gets. Run against real gunicorn with two workers, so each worker's cache is
filled by whichever visitor reaches it first.
"""
from __future__ import annotations

import re

import pytest
import requests

from portal.sites import Site, save_site
from tests.servers import Gunicorn, portal_env

LANGS = ("id", "en", "ban")
VISITORS = {
    "a": {"mac": "AA:11:22:33:44:A1", "ip": "10.5.50.11", "orig": "http://visitor-a.example/a"},
    "b": {"mac": "BB:55:66:77:88:B2", "ip": "10.5.50.22", "orig": "http://visitor-b.example/b"},
}


def mikrotik(v):
    return {"identity": "hs-cross-1", "mac": v["mac"], "ip": v["ip"], "link-orig": v["orig"],
            "link-login-only": "http://10.5.50.1/login", "trial": "yes"}


def dash(mac):
    return mac.replace(":", "-")


# vendor -> (method, path, gateway id, params of a visitor)
ARRIVALS = {
    "mikrotik-post": ("POST", "/hotspot/mikrotik", "hs-cross-1", mikrotik),
    "mikrotik-get": ("GET", "/hotspot/mikrotik", "hs-cross-1", mikrotik),
    "unifi": ("GET", "/guest/s/default/", "44:d9:e7:0a:80:43", lambda v: {
        "ap": "44:d9:e7:0a:80:43", "id": v["mac"].lower(), "t": "1601896413", "url": v["orig"], "ssid": "Bali"}),
    "omada": ("GET", "/hotspot/omada", "B0-95-75-15-93-44", lambda v: {
        "clientMac": dash(v["mac"]), "clientIp": v["ip"], "t": "1677047514", "site": "Default",
        "redirectUrl": v["orig"], "apMac": "B0-95-75-15-93-44", "ssidName": "bali", "radioId": "0"}),
    "meraki": ("GET", "/hotspot/meraki", "e0:cb:bc:b6:0c:83", lambda v: {
        "user_continue_url": v["orig"], "node_mac": "e0:cb:bc:b6:0c:83", "client_ip": v["ip"],
        "client_mac": v["mac"].lower(), "base_grant_url": "https://n93.network-auth.com/splash/grant"}),
    "wifidog": ("GET", "/wifidog/login/", "001217DA42D2", lambda v: {
        "gw_address": "192.168.1.1", "gw_port": "2060", "gw_id": "001217DA42D2", "ip": v["ip"],
        "mac": v["mac"].lower(), "url": v["orig"]}),
    "pfsense": ("POST", "/hotspot/pfsense", "pf-cross-1", lambda v: {
        "gateway_id": "pf-cross-1", "portal_action": "http://192.168.1.1:8002/index.php?zone=guest",
        "zone": "guest", "redirurl": v["orig"], "client_mac": v["mac"].lower(), "client_ip": v["ip"]}),
    "opennds": ("GET", "/hotspot/opennds", "openNDS Node:e4956e4d641c", lambda v: {
        "authaction": f"http://192.168.1.1:2050/opennds_auth/?clientip={v['ip']}",
        "gatewayname": "openNDS Node:e4956e4d641c ", "tok": "89db8d" + v["ip"][-2:], "redir": v["orig"]}),
    "coovachilli": ("GET", "/hotspot/coovachilli", "fonlo", lambda v: {
        "res": "notyet", "uamip": "192.168.182.1", "uamport": "3660",
        "challenge": "5b1d296db7826a655411dcd83ee251" + v["ip"][-2:], "called": "94-83-C4-01-42-27",
        "mac": dash(v["mac"]), "ip": v["ip"], "nasid": "fonlo", "userurl": v["orig"]}),
}
VENDOR_OF = {"mikrotik-post": "mikrotik", "mikrotik-get": "mikrotik"}
TOKEN = re.compile(r"/p/([A-Za-z0-9_\-.=]+)/connect")


def register(redis, number, vendor, gateway_id):
    save_site(redis, Site(
        site_id=f"BALI-X{number:03d}", name=f"Balai Banjar Silang {number}", type="desa_adat",
        kabupaten_kode="51.01", kabupaten="Kabupaten Jembrana", kecamatan_kode="51.01.01", kecamatan="Negara",
        desa_kode="51.01.01.1006", desa="Baler Bale Agung", gateway_vendor=vendor, gateway_id=gateway_id))


@pytest.fixture
def portal_http(redis, redis_server, tmp_path):
    for number, (case, (_, _, gateway_id, _)) in enumerate(ARRIVALS.items()):
        if case != "mikrotik-get":
            register(redis, number, VENDOR_OF.get(case, case), gateway_id)
    server = Gunicorn(portal_env(redis_server.url, tmp_path / "var"), workers=2).start()
    yield server
    server.stop()


def mac_on(page: str, visitor: dict) -> bool:
    digits = visitor["mac"].replace(":", "")
    pattern = r"[:\-.%3Aa]{0,3}".join(re.escape(digits[i:i + 2]) for i in range(0, 12, 2))
    return re.search(pattern, page, re.IGNORECASE) is not None


def fallbacks_of(page: str) -> set[str]:
    return set(re.findall(r'name="fb" value="([^"]+)"', page)) | set(re.findall(r"fb=([A-Za-z0-9_\-=%]+)", page))


@pytest.mark.parametrize("case", list(ARRIVALS))
def test_two_visitors_at_one_site_never_see_each_others_values(portal_http, case):
    method, path, _, params = ARRIVALS[case]
    url = portal_http.url + path
    pages = {"a": [], "b": []}
    tokens = {}
    # Rounds of new connections, so both workers serve (and cache) pages for both visitors.
    for round_ in range(3):
        for name in ("a", "b") if round_ % 2 == 0 else ("b", "a"):
            for lang in LANGS:
                headers = {"Accept-Language": lang, "Connection": "close"}
                fields = params(VISITORS[name])
                if case in ("opennds", "coovachilli") or name not in tokens:
                    send = requests.post if method == "POST" else requests.get
                    arrived = (send(url, data=fields, headers=headers, timeout=10) if method == "POST"
                               else send(url, params=fields, headers=headers, timeout=10))
                    assert arrived.status_code == 200, (case, arrived.status_code, arrived.text[:300])
                    pages[name].append(arrived.text)
                    match = TOKEN.search(arrived.text)
                    assert match, arrived.text[:300]
                    tokens.setdefault(name, set()).add(match.group(1))
                for token in sorted(tokens[name]):
                    for page_path in (f"/p/{token}", f"/p/{token}/lapor"):
                        page = requests.get(portal_http.url + page_path, params={"lang": lang},
                                            headers=headers, timeout=10)
                        assert page.status_code == 200, (page_path, page.status_code)
                        pages[name].append(page.text)
    # The complaint form is cached too (issue 14): its signed stamp is filled in per request, so
    # no two forms ever carry the same one (a shared stamp would give two residents one tracking number).
    stamps = [stamp for name in pages for page in pages[name]
              for stamp in re.findall(r'name="started" value="([^"]+)"', page)]
    assert stamps
    assert len(set(stamps)) == len(stamps), "one form stamp served twice"
    for me, other in (("a", "b"), ("b", "a")):
        foreign = tokens[other] | set().union(*(fallbacks_of(p) for p in pages[other]))
        mine = tokens[me] | set().union(*(fallbacks_of(p) for p in pages[me]))
        assert foreign.isdisjoint(mine), "a token or session copy served to both visitors"
        for page in pages[me]:
            for value in foreign | {VISITORS[other]["ip"], VISITORS[other]["orig"], "visitor-" + other}:
                assert value not in page, (case, me, "carries", other, value[:40])
            assert not mac_on(page, VISITORS[other]), (case, me, "carries the MAC of", other)
