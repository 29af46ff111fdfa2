"""Short tracking numbers a resident can read aloud or copy from a phone screen.

Eight random symbols from Crockford's base-32 alphabet (no I, L, O or U) and
one check symbol (Luhn mod 32), shown as ``K7Q2-MX9D-R``. The check symbol
catches every single mistyped symbol and most swapped neighbours. Reading is
forgiving: case, spaces and dashes are ignored and O/I/L read as 0/1/1.
"""
from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})
BODY_LENGTH = 8


def check_symbol(body: str) -> str:
    """Return the Luhn mod-32 check symbol of *body*."""
    total, factor, n = 0, 2, len(ALPHABET)
    for char in reversed(body):
        addend = factor * _INDEX[char]
        factor = 1 if factor == 2 else 2
        total += addend // n + addend % n
    return ALPHABET[(n - total % n) % n]


def new_tracking_number() -> str:
    """Return a fresh tracking number in canonical form (9 symbols, no dashes)."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    return body + check_symbol(body)


def normalize(text: str) -> str | None:
    """Return the canonical form of a typed tracking number, or None if it is not valid."""
    cleaned = (text or "").upper().replace("-", "").replace(" ", "").translate(_CONFUSABLE)
    if len(cleaned) != BODY_LENGTH + 1 or any(c not in _INDEX for c in cleaned):
        return None
    body, check = cleaned[:-1], cleaned[-1]
    return cleaned if check_symbol(body) == check else None


def display(number: str) -> str:
    """Format a canonical tracking number as ``K7Q2-MX9D-R``."""
    return f"{number[:4]}-{number[4:8]}-{number[8:]}"
