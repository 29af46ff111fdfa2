"""Data-subject requests (UU 27/2022 Pasal 5-13): find, export or erase what is held about a person.

A person is named by a tracking number or by a contact (phone or e-mail, found through its
blind index, portal.contact_index). What is held about them:

- each complaint record (plain fields, sealed text and contact) and its delivery state;
- raw funnel events carrying the complaint's device pseudonym (the stream is kept
  ``EVENT_RETENTION_DAYS`` only, so reading it is bounded);
- records still in this machine's spool (Redis was down when they were filed), dropped by an
  erase so a later replay cannot bring them back (other web nodes' spools are their own);
- local copies kept by delivery channels (the outbox), erased through the channels.

Aggregate counters and HyperLogLogs hold no recoverable personal data and are not touched.
Every use is written to the audit log by the callers (CLI and studio page), with the
complaint tracking numbers as targets and never the contact itself.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

from .. import contact_index, tracking as tracking_numbers
from ..complaints import store
from ..delivery import state
from ..events import EVENTS
from ..i18n import gettext as _
from . import retention

EVENT_SCAN_LIMIT = 2_000_000


class NotFound(ValueError):
    """The request names nothing this service can look up."""


def tracking_numbers_for(client, province: str, *, tracking: str = "", contact: str = "", key: str) -> list[str]:
    """The complaints a request is about: the one tracking number, or every complaint filed with the contact."""
    if tracking:
        normal = tracking_numbers.normalize(tracking)
        if normal is None:
            raise NotFound(_("That is not a valid tracking number."))
        return [normal]
    if contact:
        index = contact_index.of(contact, key)
        if not index:
            raise NotFound(_("Give a phone number or an e-mail address."))
        return sorted(t.decode() for t in client.smembers(store.contact_key(province, index)))
    raise NotFound(_("Give a tracking number or a contact."))


def _events_of(client, devices: set[str]) -> list[tuple[str, dict]]:
    """Raw events of these device pseudonyms (a bounded pass over the capped, age-trimmed stream)."""
    found, cursor, read = [], "-", 0
    while devices and read < EVENT_SCAN_LIMIT:
        batch = client.xrange(EVENTS, min=cursor, count=5000)
        if not batch:
            break
        for entry_id, fields in batch:
            if fields.get(b"device", b"").decode() in devices:
                found.append((entry_id.decode(), {k.decode(): v.decode() for k, v in fields.items()}))
        read += len(batch)
        cursor = "(" + batch[-1][0].decode()
    return found


def _spooled(spool_dir: Path, numbers: set[str]) -> list[dict]:
    found = []
    for path in sorted(spool_dir.glob("*.jsonl")) if spool_dir.exists() else []:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            plain = (record.get("data") or {}).get("plain") or {}
            if record.get("kind") == "complaint" and plain.get("tracking") in numbers:
                found.append({"file": path.name, "tracking": plain["tracking"]})
    return found


def erase_spooled(spool, numbers: set[str]) -> int:
    """Drop these complaints from the local spool files (they would come back on replay); return how many.

    Holds the spool's replay lock, so no replay runs meanwhile; new appends go to a fresh file.
    """
    directory = Path(spool.directory)
    if not numbers or not spool.pending():
        return 0
    lock_fd = os.open(spool.lock_path, os.O_WRONLY | os.O_CREAT, 0o600)
    removed = 0
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        spool._rotate()  # the current file becomes a replay file, so it is rewritten under the lock
        for path in sorted(directory.glob("replay-*.jsonl")):
            kept = []
            for line in path.read_bytes().splitlines(keepends=True):
                try:
                    record = json.loads(line)
                except ValueError:
                    kept.append(line)
                    continue
                plain = (record.get("data") or {}).get("plain") or {}
                if record.get("kind") == "complaint" and plain.get("tracking") in numbers:
                    removed += 1
                else:
                    kept.append(line)
            if removed:
                temporary = path.with_suffix(".tmp")
                with temporary.open("wb") as handle:
                    handle.writelines(kept)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, path)
    finally:
        os.close(lock_fd)
    return removed


def find(client, province: str, numbers: list[str], *, crypto, spool_dir: Path, with_content: bool) -> dict:
    """Everything held about these complaints; sealed parts opened only when *with_content* (export)."""
    complaints, devices = [], set()
    for number in numbers:
        record = store.read(client, province, number)
        if record is None:
            continue
        entry = {"tracking": number,
                 "record": {k: v for k, v in record.items() if k not in ("sealed_text", "sealed_contact")},
                 "has_text": "sealed_text" in record, "has_contact": "sealed_contact" in record,
                 "delivery": state.read_state(client, province, number)}
        if with_content:
            for name in ("sealed_text", "sealed_contact"):
                if record.get(name):
                    entry[name.removeprefix("sealed_")] = crypto.unseal(record[name])
        if record.get("device"):
            devices.add(record["device"])
        complaints.append(entry)
    events = _events_of(client, devices)
    return {"complaints": complaints, "events": [dict(fields, id=i) for i, fields in events] if with_content
            else len(events), "spool": _spooled(spool_dir, set(numbers))}


def erase(client, province: str, numbers: list[str], *, on_erase=None, now: float | None = None,
          spool=None) -> dict:
    """Erase the personal data of these complaints, their raw events and spooled copies; return counts."""
    now = time.time() if now is None else now
    spooled = erase_spooled(spool, set(numbers)) if spool is not None else 0
    devices = set()
    erased = 0
    for number in numbers:
        record = store.read(client, province, number)
        if record is None:
            continue
        if record.get("device"):
            devices.add(record["device"])
        if on_erase:
            on_erase(number)
        retention.forget(client, province, number, now=now)
        erased += 1
    events = [entry_id for entry_id, _ in _events_of(client, devices)]
    for start in range(0, len(events), 500):
        client.xdel(EVENTS, *events[start:start + 500])
    return {"complaints_erased": erased, "events_removed": len(events), "spooled_erased": spooled}
