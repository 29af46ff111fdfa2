"""One data-subject request, as the CLI and the studio page run it: look up, act, audit."""
from __future__ import annotations

import os
from pathlib import Path

from flask import current_app

from .. import audit, contact_index
from .. import tracking as tracking_numbers
from ..complaints import store
from ..crypto import get_crypto
from ..redis import raw_client
from . import dsr
from .dsr import NotFound

__all__ = ["NotFound", "handle"]


def handle(action: str, *, tracking: str, contact: str, actor: str, role: str, via: str, on_erase=None,
           region: str = "") -> dict:
    """Run *action* (find, export, erase) for a tracking number or a contact; audited whatever it finds.

    A *region* finer than the province limits the request to complaints filed in it.
    """
    config = current_app.config
    province = config["PROVINCE"]
    client = raw_client()
    numbers = dsr.tracking_numbers_for(client, province, tracking=tracking.strip(), contact=contact.strip(),
                                       key=config["DEVICE_KEY"])
    region = region.replace(".", "")  # the studio keeps regions dotted ("51.71")
    if region and region != province:
        numbers = [n for n in numbers if _filed_in(client, province, n, region)]
    # The audit names the complaints and, for a contact, a short prefix of its index: never the contact.
    subject = (f"contact:{contact_index.of(contact, config['DEVICE_KEY'])[:12]}" if contact.strip()
               else tracking_numbers.normalize(tracking) or "")
    if action == "erase":
        result = dsr.erase(client, province, numbers, on_erase=on_erase,
                           spool=current_app.extensions["portal_spool"])
    else:
        result = dsr.find(client, province, numbers, crypto=get_crypto(),
                          spool_dir=Path(os.path.join(config["VAR_DIR"], "spool")), with_content=action == "export")
    counts = {"complaints": len(numbers)}
    counts.update({k: v for k, v in result.items() if isinstance(v, int)})
    audit.record(client, province, actor=actor, role=role, action=f"dsr.{action}", target=subject, via=via,
                 region=region or province, tracking_numbers=numbers, **counts)
    return {"subject": subject, "tracking_numbers": numbers, **result}


def _filed_in(client, province: str, number: str, region: str) -> bool:
    record = store.read(client, province, number) or {}
    code = (record.get("desa_kode") or record.get("kabupaten_kode") or "").replace(".", "")
    return bool(code) and code.startswith(region)
