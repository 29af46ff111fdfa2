"""The recorded UniFi and Omada arrivals, replayed through the portal to stand-in controllers."""
from __future__ import annotations

from tests.hotspot_hooks.helpers import replay

from .conftest import omada_options, omada_secrets


def test_unifi_recording_reaches_the_controller(unifi_os, wiring, resident):
    wiring.configure("BALI-U001", {"minutes": 30, "controller_url": unifi_os.url},
                     {"controller_username": unifi_os.username, "controller_password": unifi_os.password})
    assert replay(resident, "unifi", "capport_capture").status_code == 200 and resident.token
    assert resident.connect().status_code == 200
    assert unifi_os.granted == [{"site": "default", "cmd": "authorize-guest", "mac": "70:8a:09:65:4d:ec",
                                 "minutes": 30, "ap_mac": "44:d9:e7:0a:80:43"}]


def test_omada_recording_reaches_the_controller(omada_controller, wiring, resident):
    wiring.configure("BALI-O001", {"minutes": 30, "controller_url": omada_controller.url,
                                   **omada_options(omada_controller)}, omada_secrets(omada_controller))
    assert replay(resident, "omada", "capport_capture").status_code == 200 and resident.token
    assert resident.connect().status_code == 200
    assert omada_controller.granted == [{"clientMac": "52-DE-63-F1-E3-3B", "apMac": "B0-95-75-15-93-44",
                                         "ssidName": "eap225", "radioId": 0, "site": "Default",
                                         "time": 30 * 60 * 1000, "authType": 4}]
