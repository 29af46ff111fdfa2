"""WCAG 2.x contrast of theme colours (AA: 4.5:1 for body text)."""
from __future__ import annotations

import re

AA_NORMAL = 4.5
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def valid_colour(value: str) -> bool:
    """True for a ``#rrggbb`` colour."""
    return bool(_HEX.match(value or ""))


def luminance(colour: str) -> float:
    """Relative luminance of a ``#rrggbb`` colour."""
    def channel(c: int) -> float:
        """One sRGB channel, linearised."""
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def ratio(a: str, b: str) -> float:
    """Contrast ratio between two colours (1 to 21)."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def passes_aa(foreground: str, background: str) -> bool:
    """True when the pair meets WCAG AA for normal text."""
    return ratio(foreground, background) >= AA_NORMAL
