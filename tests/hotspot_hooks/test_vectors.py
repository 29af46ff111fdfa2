"""The published test vectors of gateways.md, checked exactly."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from hotspot_hooks import SignatureError
from hotspot_hooks.coovachilli import (RAW_QUERY, REQUEST_URL, chap_response, expected_md, new_challenge,
                                       pap_password, verify_md)
from hotspot_hooks.mikrotik import chap_response as mikrotik_chap
from hotspot_hooks.opennds import decrypt_payload, encrypt_payload, gateway_hash, parse_payload, rhid

RECORDINGS = Path(__file__).resolve().parent / "recordings"
FASKEY = "128bcddbf4df3e16147dbb31b3b1b16472a3d2608f10b5407c8cdc352433761f"  # capport OpenNDS/fas-23.php
LEVEL2_PLAIN = (
    "hid=f540a744cd6ade72cfdb796c890817d32854ad01412c9b96bba6af90a556d089, clientip=192.168.1.249, "
    "clientmac=0e:2a:69:75:97:18, client_type=cpd_can, gatewayname=openNDS%20Node%3ae4956e4d641c%20, "
    "gatewayurl=http%3a%2f%2fstatus.client, version=10.1.2, gatewayaddress=192.168.1.1:2050, "
    "gatewaymac=e4956e4d641c, authdir=opennds_auth, "
    "originurl=http%3a%2f%2fconnectivitycheck.gstatic.com%2fgenerate_204, clientif=wlan0, themespec=, "
    "(null)(null)(null)(null)")


def captured(vendor: str, case: str) -> dict:
    recording = json.loads((RECORDINGS / vendor / case / "arrival.json").read_text())
    return dict(parse_qsl(recording["query"], keep_blank_values=True))


def test_opennds_level2_capture_decrypts_to_the_published_payload():
    query = captured("opennds", "level2_capture")
    assert decrypt_payload(query["fas"], query["iv"], FASKEY) == LEVEL2_PLAIN


def test_opennds_encryption_reproduces_the_routers_bytes():
    query = captured("opennds", "level2_capture")
    assert encrypt_payload(LEVEL2_PLAIN, query["iv"], FASKEY) == query["fas"]


def test_opennds_payload_under_another_faskey_is_refused():
    query = captured("opennds", "level2_capture")
    with pytest.raises(SignatureError):
        decrypt_payload(query["fas"], query["iv"], FASKEY[32:] + FASKEY[:32])


@pytest.mark.parametrize(("hid", "token"), [
    ("f540a744cd6ade72cfdb796c890817d32854ad01412c9b96bba6af90a556d089",
     "ea1d0c0f952a860e187c774f94de7188507c0dcc6197c3b8daa383b244eeadc7"),
    ("2e607304f6f6983b3f52b6e10b4e4c62ddc744099168c27dda0fc76db30f2252",
     "e4c55066ebdbdc37e3d4599095fa83c920d387997b5915842bea2c0b25cc324a"),
])
def test_opennds_rhid(hid, token):
    assert rhid(hid, FASKEY) == token


def test_opennds_payload_and_gatewayhash():
    payload = parse_payload(LEVEL2_PLAIN)
    assert payload["gatewayaddress"] == "192.168.1.1:2050" and payload["themespec"] == ""
    assert gateway_hash(payload["gatewayname"]) == hashlib.sha256(b"openNDS%20Node%3ae4956e4d641c%20").hexdigest()


CHALLENGE = "5b1d296db7826a655411dcd83ee25154"


def test_coovachilli_published_vectors():
    assert new_challenge(CHALLENGE, "secret").hex() == "fe649b0cd5a474226f71ede802ea1d54"
    assert chap_response(CHALLENGE, "hspass", "secret") == "38cb1e44fbcf6fc88dec1ee81b63d790"
    assert pap_password(CHALLENGE, "hspass", "secret") == "9617eb6da6d7"
    assert chap_response(CHALLENGE, "hspass", "") == "deed84f93312750bc09e3ddbe97d2d24"


def test_coovachilli_md_is_md5_of_url_and_secret_in_upper_hex():
    url = "https://portal.test/hotspot/coovachilli?res=notyet&uamip=192.168.182.1&userurl=http%3a%2f%2fcaptive.apple.com%2f"
    assert expected_md(url, "secret") == hashlib.md5((url + "secret").encode()).hexdigest().upper()


def _signed(query: str, secret: str = "secret", base: str = "https://portal.test/hotspot/coovachilli") -> dict:
    md = hashlib.md5(f"{base}?{query}{secret}".encode()).hexdigest().upper()
    return {RAW_QUERY: f"{query}&md={md}", REQUEST_URL: base}


def test_coovachilli_md_verifies_on_the_raw_lowercase_escapes():
    query = "res=notyet&uamip=192.168.182.1&uamport=3660&userurl=http%3a%2f%2fcaptive.apple.com%2f"
    verify_md(_signed(query), "secret")
    altered = _signed(query)
    altered[RAW_QUERY] = altered[RAW_QUERY].replace("%3a", "%3A")  # re-encoding breaks the signature
    with pytest.raises(SignatureError):
        verify_md(altered, "secret")


@pytest.mark.parametrize("tamper", [
    lambda a: {**a, RAW_QUERY: a[RAW_QUERY].replace("uamport=3660", "uamport=3661")},
    lambda a: {**a, RAW_QUERY: a[RAW_QUERY] + "&uamip=10.0.0.1"},      # appended after md
    lambda a: {**a, REQUEST_URL: "https://evil.example/hotspot/coovachilli"},
    lambda a: {**a, RAW_QUERY: a[RAW_QUERY].split("&md=")[0]},          # signature stripped
])
def test_coovachilli_md_refuses_tampering(tamper):
    with pytest.raises(SignatureError):
        verify_md(tamper(_signed("res=notyet&uamip=192.168.182.1&uamport=3660")), "secret")


def test_mikrotik_chap_vector():
    challenge = r"\357\015\330\013\021\234\145\245\303\253\142\246\133\175\375\316"
    assert mikrotik_chap(r"\371", "hspass", challenge) == "1bd882a0d22b72978eff83882edd42f4"
