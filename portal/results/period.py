"""The region and WITA period a results request asks for, checked against the staff member's scope."""
from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass

from ..funnel import day_range, scope_of, today_wita
from ..i18n import gettext as _
from ..regions import regions

MAX_DAYS = 400
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


class BadRequest(ValueError):
    """A request parameter that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Query:
    region: str     # undotted Kemendagri code
    scope: str      # funnel scope tag
    start: dt.date
    end: dt.date
    campaign: str | None

    @property
    def days(self) -> list[str]:
        return day_range(self.start, self.end)


def dotted(code: str) -> str:
    """``5101011006`` -> ``51.01.01.1006`` (the registry's spelling)."""
    parts = [code[:2], code[2:4], code[4:6], code[6:]]
    return ".".join(p for p in parts if p)


def region_name(code: str) -> str:
    """The official name of an undotted region code, or the code itself."""
    entry = regions().get(dotted(code))
    return entry[0] if entry else code


def parse(args, *, default_region: str, province: str, now: float | None = None) -> Query:
    """Read ``region``, ``from``/``to`` or ``week``, and ``campaign`` from query *args*."""
    region = (args.get("region") or default_region).replace(".", "").strip()
    if not region.isdigit() or len(region) not in (2, 4, 6, 10) or not region.startswith(province):
        raise BadRequest(_("The region must be a region code of province %(province)s, like 5171.",
                               province=province))
    today = today_wita(time.time() if now is None else now)
    week = (args.get("week") or "").strip()
    if week:
        match = _WEEK.match(week)
        try:
            start = dt.date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1) if match else None
        except ValueError:
            start = None
        if start is None:
            raise BadRequest(_("The week must look like 2026-W49."))
        end = start + dt.timedelta(days=6)
    else:
        try:
            end = dt.date.fromisoformat(args["to"]) if args.get("to") else today
            start = dt.date.fromisoformat(args["from"]) if args.get("from") else end - dt.timedelta(days=6)
        except ValueError:
            raise BadRequest(_("From and to must be dates like 2026-12-01.")) from None
    if end < start:
        start, end = end, start
    if (end - start).days >= MAX_DAYS:
        raise BadRequest(_("A period is at most %(days)s days.", days=MAX_DAYS))
    campaign = (args.get("campaign") or "").strip() or None
    return Query(region=region, scope=scope_of(region, province), start=start, end=end, campaign=campaign)
