"""Erasure of personal data after delivery plus ``PORTAL_RETENTION_DAYS``, and key rotation.

After erasure a record keeps only its plain, non-personal fields (status,
category, place codes, dates) so the status page and the statistics still
work; the sealed name, contact, text and place details are deleted.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

import redis

from .. import key_rotation
from . import state

log = logging.getLogger(__name__)
SEALED = ("sealed_contact", "sealed_text")

# Re-encrypt a field only if nobody changed or erased it since we read it.
_SWAP = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) return 1
end
return 0
"""


def erase(client: redis.Redis, province: str, tracking: str, *, now: float | None = None) -> None:
    """Delete a complaint's personal data now, keeping its plain fields."""
    keys = state.keys(province, tracking)
    with client.pipeline(transaction=True) as pipe:
        pipe.hdel(keys["record"], *SEALED)
        # Only mark records that exist: HSET would otherwise create a stub.
        pipe.exists(keys["record"])
        pipe.delete(keys["state"])
        pipe.zrem(keys["retention"], tracking)
        _, exists, *_ = pipe.execute()
    if exists:
        client.hset(keys["record"], "erased_at", f"{time.time() if now is None else now:.0f}")


def purge_expired(client: redis.Redis, province: str, *, retention_days: float, now: float | None = None,
                  on_erase: Callable[[str], None] | None = None) -> int:
    """Erase personal data of complaints delivered more than *retention_days* ago; return how many.

    *on_erase(tracking)* deletes copies kept outside Redis (the local outbox's file).
    """
    now = time.time() if now is None else now
    cutoff = now - float(retention_days) * 86400
    key = state.keys(province)["retention"]
    erased = 0
    while True:
        due = client.zrangebyscore(key, "-inf", cutoff, start=0, num=200)
        if not due:
            break
        for tracking in due:
            if on_erase:
                on_erase(tracking.decode())
            erase(client, province, tracking.decode(), now=now)
        erased += len(due)
    if erased:
        log.info("retention: erased personal data of %d complaint(s)", erased)
    return erased


@key_rotation.rotator("complaints")
def rotate_complaints(client: redis.Redis, crypto) -> int:
    """Re-encrypt every complaint's sealed fields under the newest data key; return fields rewritten.

    Run after putting a new key first in ``PORTAL_DATA_KEYS``; once it
    returns, the old keys can be dropped.
    """
    rotated = 0
    for key in client.scan_iter(match="portal:{p*}:complaint:*", count=500, _type="hash"):
        for name in SEALED:
            old = client.hget(key, name)
            if not old:
                continue
            rotated += int(client.eval(_SWAP, 1, key, name, old, crypto.rotate(old)))
    log.info("keys: re-encrypted %d sealed field(s)", rotated)
    return rotated
