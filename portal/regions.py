"""Bali's official region codes (Kemendagri 2025), shipped in ``portal/data``."""
from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).parent / "data" / "bali_wilayah.csv"


@lru_cache(maxsize=1)
def regions() -> dict[str, tuple[str, str, str]]:
    """Return ``{kode: (nama, tingkat, induk)}`` for every Bali region."""
    with DATA.open(newline="", encoding="utf-8") as handle:
        return {row["kode"]: (row["nama"], row["tingkat"], row["induk"]) for row in csv.DictReader(handle)}


def parent_of(code: str) -> str | None:
    """Return the parent code of *code*, or None if the code is unknown."""
    entry = regions().get(code)
    return entry[2] if entry else None
