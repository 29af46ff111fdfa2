"""One data-subject request, as the CLI and the studio page run it: look up, act, audit."""
from __future__ import annotations

import os
from pathlib import Path

from flask import current_app

from .. import audit, contact_index
from ..crypto import get_crypto
from ..redis import raw_client
from . import dsr
from .dsr import NotFound

__all__ = ["NotFound", "handle"]


def handle(action: str, *, tracking: str, contact: str, actor: str, role: str, via: str, on_erase=None) -> dict:
    """Run *action* (find, export, erase) for a tracking number or a contact; audited whatever it finds."""
    config = current_app.config
    province = config["PROVINCE"]
    client = raw_client()
    numbers = dsr.tracking_numbers_for(client, province, tracking=tracking.strip(), contact=contact.strip(),
                                       key=config["DEVICE_KEY"])
    # The audit names the complaints and, for a contact, a short prefix of its index: never the contact.
    subject = f"contact:{contact_index.of(contact, config['DEVICE_KEY'])[:12]}" if contact.strip() else numbers[0]
    if action == "erase":
        result = dsr.erase(client, province, numbers, on_erase=on_erase,
                           spool=current_app.extensions["portal_spool"])
    else:
        result = dsr.find(client, province, numbers, crypto=get_crypto(),
                          spool_dir=Path(os.path.join(config["VAR_DIR"], "spool")), with_content=action == "export")
    counts = {"complaints": len(numbers)}
    counts.update({k: v for k, v in result.items() if isinstance(v, int)})
    audit.record(client, province, actor=actor, role=role, action=f"dsr.{action}", target=subject, via=via,
                 tracking_numbers=numbers, **counts)
    return {"subject": subject, "tracking_numbers": numbers, **result}
