"""Helpers for end-to-end tests of the vendor adapters: registered sites and recorded arrivals."""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from portal.crypto import get_crypto
from portal.sites import Site, save_site
from tests.conftest import TOKEN

RECORDINGS = Path(__file__).resolve().parent / "recordings"
FASKEY = "128bcddbf4df3e16147dbb31b3b1b16472a3d2608f10b5407c8cdc352433761f"


def add_site(app, redis, *, site_id: str, vendor: str, gateway_id: str, settings=None, secrets=None) -> Site:
    """Register a site (secrets sealed as the operator CLI seals them)."""
    with app.app_context():
        sealed = get_crypto().seal(secrets) if secrets else ""
    site = Site(site_id=site_id, name=f"Balai Banjar {site_id}", type="desa_adat", kabupaten_kode="51.01",
                kabupaten="Kabupaten Jembrana", kecamatan_kode="51.01.01", kecamatan="Negara",
                desa_kode="51.01.01.1006", desa="Baler Bale Agung", gateway_vendor=vendor,
                gateway_id=gateway_id, settings=settings or {}, secrets=sealed)
    save_site(redis, site)
    app.extensions["portal_sites"].invalidate()
    return site


def recording(vendor: str, case: str) -> dict:
    return json.loads((RECORDINGS / vendor / case / "arrival.json").read_text())


def replay(resident, vendor: str, case: str, *, query: str | None = None):
    """Send the recorded redirect through the test client, as the phone would."""
    rec = recording(vendor, case)
    path = urlsplit(rec["url"]).path
    if rec["method"] == "GET":
        response = resident.client.get(f"{path}?{rec['query'] if query is None else query}",
                                       base_url="https://portal.test")
    else:
        response = resident.client.post(path, data=rec["form"], base_url="https://portal.test")
    match = TOKEN.search(response.get_data(as_text=True))
    resident.token = match.group(1) if match else ""
    return response
