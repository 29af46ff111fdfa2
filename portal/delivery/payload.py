"""The canonical payload of a complaint, the one shape every channel starts from.

Anonim and Rahasia are honoured here, once, for every channel:

- ``anonim`` and ``rahasia`` are always present, as booleans;
- anonim: the reporter's name and contact are left out entirely
  (``reporter`` is null), so no channel can put them in a public field;
- rahasia: ``visibility`` is ``"private"`` so the receiver keeps the report
  itself off public listings.
"""
from __future__ import annotations

from datetime import datetime, timezone

from ..tracking import display

LOCATION = ("desa", "desa_kode", "kecamatan", "kecamatan_kode", "kabupaten", "kabupaten_kode")


class ErasedError(Exception):
    """The complaint's sealed text is gone (erased or never stored); it cannot be delivered."""


def build(record: dict, crypto, *, public_url: str) -> dict:
    """Unseal *record* into the payload sent to receivers."""
    if not record.get("sealed_text"):
        raise ErasedError(record.get("tracking", ""))
    text = crypto.unseal(record["sealed_text"])
    anonim, rahasia = record.get("anonim") == "1", record.get("rahasia") == "1"
    reporter = None
    if not anonim and record.get("sealed_contact"):
        contact = crypto.unseal(record["sealed_contact"])
        reporter = {"name": contact.get("name", ""), "contact": contact.get("contact", "")}
    created = datetime.fromtimestamp(float(record.get("created_at") or 0), timezone.utc)
    tracking = record["tracking"]
    return {
        "tracking": tracking,
        "kind": record.get("kind", ""),
        "category": record.get("category", ""),
        # A title without the text: LAPOR! lists titles publicly.
        "title": f"{record.get('kind', '')}: {record.get('category', '')} di {record.get('desa') or record.get('kabupaten', '')}",
        "body": text.get("body", ""),
        "place": text.get("place", ""),
        "incident_date": record.get("incident_date", ""),
        "location": {key: record.get(key, "") for key in LOCATION},
        "anonim": anonim,
        "rahasia": rahasia,
        "visibility": "private" if rahasia else "public",
        "reporter": reporter,
        "lang": record.get("lang", ""),
        "site_id": record.get("site_id", ""),
        "created_at": created.isoformat(timespec="seconds"),
        "status_url": f"{public_url.rstrip('/')}/status/{display(tracking)}",
        "source": "bali-wifi-portal",
    }
