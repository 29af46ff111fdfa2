"""Fixtures: stand-in controllers on 127.0.0.1 and sites wired to them."""
from __future__ import annotations

import pytest

from hotspot_hooks import omada, unifi
from portal.crypto import get_crypto
from portal.site_secrets import set_secret, set_setting
from portal.sites import import_sites, parse_csv

from .standins import OmadaStandIn, RouterOSRestStandIn, UnifiStandIn

CONTROLLER_SITES = """site_id,name,type,kabupaten_kode,kabupaten,kecamatan_kode,kecamatan,desa_kode,desa,gateway_vendor,gateway_id
BALI-U001,Balai Banjar Uma,fasilitas_umum,51.01,Kabupaten Jembrana,51.01.01,Negara,51.01.01.1006,Baler Bale Agung,unifi,44:d9:e7:0a:80:43
BALI-O001,Pasar Desa Banjar Tengah,pasar,51.01,Kabupaten Jembrana,51.01.01,Negara,51.01.01.1008,Banjar Tengah,omada,B0-95-75-15-93-44
BALI-M001,Puskesmas Negara,puskesmas,51.01,Kabupaten Jembrana,51.01.01,Negara,51.01.01.1006,Baler Bale Agung,mikrotik,hs-rest-1
"""
#: Arrival parameters as the gateways send them (splash-networks/capport captures, gateways.md §4.1, §6).
UNIFI_ARRIVAL = {"ap": "44:d9:e7:0a:80:43", "id": "70:8a:09:65:4d:ec", "t": "1601896413",
                 "url": "http://connectivitycheck.platform.hicloud.com/generate_204", "ssid": "WiFi Publik Bali"}
OMADA_ARRIVAL = {"clientMac": "52-DE-63-F1-E3-3B", "clientIp": "192.168.100.165", "t": "1677047514",
                 "site": "Default", "redirectUrl": "http://connectivitycheck.gstatic.com/generate_204",
                 "apMac": "B0-95-75-15-93-44", "ssidName": "eap225", "radioId": "0"}


@pytest.fixture(autouse=True)
def fresh_controller_sessions():
    """Each test starts without cached controller logins."""
    unifi.forget_sessions()
    omada.forget_sessions()
    yield
    unifi.forget_sessions()
    omada.forget_sessions()


def _serve(standin):
    standin.start()
    yield standin
    standin.stop()


def _with_resident(standin, mac: str):
    """The stand-in with the recorded arrival's device connected, as it is on a real site."""
    standin.connect_client(mac)
    return standin


@pytest.fixture
def unifi_classic():
    yield from _serve(_with_resident(UnifiStandIn(unifi_os=False), UNIFI_ARRIVAL["id"]))


@pytest.fixture
def unifi_os():
    yield from _serve(_with_resident(UnifiStandIn(unifi_os=True), UNIFI_ARRIVAL["id"]))


@pytest.fixture
def omada_controller():
    yield from _serve(_with_resident(OmadaStandIn(), OMADA_ARRIVAL["clientMac"]))


@pytest.fixture
def rest_router():
    yield from _serve(_with_resident(RouterOSRestStandIn(), "70:8A:09:65:4D:EC"))


def omada_options(standin) -> dict:
    """The site options an Omada site needs besides the controller's address."""
    return {"omada_controller_id": standin.controller_id, "omada_site": "Default", "omada_site_id": standin.site_id}


def omada_secrets(standin) -> dict:
    """The hotspot operator and the Open API application of an Omada site."""
    return {"controller_username": standin.name, "controller_password": standin.password,
            "omada_client_id": standin.client_id, "omada_client_secret": standin.client_secret}


class SiteWiring:
    """Set settings and secrets of the controller sites, as an operator would with the CLI."""

    def __init__(self, app, redis):
        self.app, self.redis = app, redis
        import_sites(redis, parse_csv(CONTROLLER_SITES))

    def configure(self, site_id: str, settings: dict, secrets: dict) -> None:
        with self.app.app_context():
            for key, value in settings.items():
                set_setting(self.redis, site_id, key, str(value))
            for name, value in secrets.items():
                set_secret(self.redis, get_crypto(), site_id, name, value)
        self.app.extensions["portal_sites"].invalidate()


@pytest.fixture
def wiring(app, redis):
    return SiteWiring(app, redis)
