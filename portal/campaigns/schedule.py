"""When and where a campaign runs: dates and daily hours in WITA, and its target area.

Times are Bali's (WITA, UTC+8, no daylight saving). Daily hours may cross midnight
(``22:00``–``02:00``): the hours after midnight belong to the evening before, so a
campaign ending on 31 December still runs until 02:00 on 1 January, and one starting
on 1 December does not run from 00:00 to 02:00 that day.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

WITA = timezone(timedelta(hours=8), "WITA")
_HOUR = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_hour(text: str) -> time | None:
    """``HH:MM`` as a time, None when empty or malformed."""
    match = _HOUR.match(text or "")
    return time(int(match.group(1)), int(match.group(2))) if match else None


def parse_day(text: str) -> date | None:
    """``YYYY-MM-DD`` as a date, None when empty or malformed."""
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def wita(ts: float) -> datetime:
    """A unix time as WITA wall-clock time."""
    return datetime.fromtimestamp(ts, WITA)


def wita_timestamp(day: str, hour: str = "00:00") -> float | None:
    """The unix time of a WITA date and hour, None if either is malformed."""
    d, h = parse_day(day), parse_hour(hour or "00:00")
    if d is None or h is None:
        return None
    return datetime.combine(d, h, WITA).timestamp()


@dataclass(frozen=True)
class Schedule:
    """Start and end dates (inclusive) and daily hours; empty values mean no limit."""

    start: str = ""
    end: str = ""
    hours_from: str = ""
    hours_to: str = ""

    def active(self, ts: float) -> bool:
        """True when the campaign runs at unix time *ts*."""
        now = wita(ts)
        day, clock = now.date(), now.time()
        start, stop = parse_hour(self.hours_from), parse_hour(self.hours_to)
        if start is not None and stop is not None and start != stop:
            if start < stop:
                if not start <= clock < stop:
                    return False
            elif clock >= start:
                pass  # the evening part: today's window
            elif clock < stop:
                day -= timedelta(days=1)  # after midnight: the window opened yesterday evening
            else:
                return False
        first, last = parse_day(self.start), parse_day(self.end)
        return (first is None or day >= first) and (last is None or day <= last)


@dataclass(frozen=True)
class Targeting:
    """Region codes (any level, dotted), site types and single sites; all empty: the owner's region."""

    regions: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    owner: str = "51"  # the campaign's region, undotted (``5171``)

    def area_codes(self) -> tuple[str, ...]:
        """The region codes the campaign covers (the owner's region when none are named)."""
        if self.regions:
            return self.regions
        if self.sites:
            return ()
        return (dotted(self.owner),)

    def matches(self, site) -> bool:
        """True when the campaign targets *site* (the reference the index must agree with)."""
        if site is None:
            return False
        if site.site_id in self.sites:
            return True
        codes = self.area_codes()
        in_area = any(site.desa_kode == c or site.desa_kode.startswith(c + ".") for c in codes)
        return in_area and (not self.types or site.type in self.types)


def dotted(code: str) -> str:
    """``5171011001`` → ``51.71.01.1001`` (Kemendagri notation); dotted codes pass unchanged."""
    code = (code or "").strip()
    if "." in code or len(code) <= 2:
        return code
    parts = [code[:2], code[2:4], code[4:6], code[6:]]
    return ".".join(p for p in parts if p)


def site_area_keys(site) -> list[str]:
    """The region codes a site lies in, province to desa."""
    desa = site.desa_kode
    parts = desa.split(".")
    return [".".join(parts[:n]) for n in range(1, len(parts) + 1)]


__all__ = ["Schedule", "Targeting", "WITA", "dotted", "site_area_keys", "wita", "wita_timestamp"]
