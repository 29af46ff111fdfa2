"""``flask keys rotate``: every kind of sealed record registers how to re-encrypt itself.

Each rotator takes the raw Redis client and the app's :class:`~portal.crypto.Crypto`
and returns how many records it re-encrypted under the newest key. Owners
register from a module that ``create_app`` imports::

    @key_rotation.rotator("complaints")
    def rotate_complaints(client, crypto) -> int:
        ...  # SCAN portal:{p51}:complaint:*, crypto.rotate() sealed_text/sealed_contact

Site secrets register themselves in :mod:`portal.site_secrets`.
"""
from __future__ import annotations

from typing import Callable

import redis

from .crypto import Crypto

Rotator = Callable[[redis.Redis, Crypto], int]
ROTATORS: dict[str, Rotator] = {}


def rotator(name: str) -> Callable[[Rotator], Rotator]:
    """Register *fn* as the rotator of the records called *name*."""

    def register(fn: Rotator) -> Rotator:
        ROTATORS[name] = fn
        return fn

    return register


def rotate_all(client: redis.Redis, crypto: Crypto) -> dict[str, int]:
    """Run every registered rotator; return records re-encrypted per kind."""
    return {name: fn(client, crypto) for name, fn in sorted(ROTATORS.items())}
