"""Reading the funnel counters that portal.events writes: one scope, a range of WITA days.

A read is one pipeline of HGETALLs (one per day) plus one of PFCOUNTs (one per step,
each a union over that scope's days and variants, which share the scope's hash tag).
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from .events import COUNTERS, STEPS, UNIQUES, WITA

UNKNOWN = "unknown"


def scope_of(code: str, province: str) -> str:
    """The scope tag of a region code (``51``, ``51.71``, ``5171010001``) or ``site:<id>``."""
    if code.startswith("site:"):
        return "s" + code[5:]
    code = code.replace(".", "")
    return f"p{province}" if code == province else f"r{code}"


def today_wita(now: float) -> dt.date:
    """The WITA calendar day of a unix time."""
    return dt.datetime.fromtimestamp(now + WITA, dt.timezone.utc).date()


def day_range(start: dt.date, end: dt.date) -> list[str]:
    """Every day from *start* to *end* inclusive as ``yyyymmdd``."""
    if end < start:
        start, end = end, start
    return [(start + dt.timedelta(days=n)).strftime("%Y%m%d") for n in range((end - start).days + 1)]


def week_of(day: str) -> str:
    """The ISO week (``2026-W49``) of a ``yyyymmdd`` day."""
    year, week, _ = dt.date(int(day[:4]), int(day[4:6]), int(day[6:])).isocalendar()
    return f"{year}-W{week:02d}"


def _steps() -> dict[str, int]:
    return {step: 0 for step in STEPS}


@dataclass
class Report:
    """The funnel of one scope over some days, broken down every way the counters allow."""

    scope: str
    days: list[str]
    totals: dict = field(default_factory=_steps)
    uniques: dict = field(default_factory=_steps)
    held: int = 0
    by_variant: dict = field(default_factory=lambda: defaultdict(_steps))  # (campaign, variant) -> steps
    by_lang: dict = field(default_factory=lambda: defaultdict(_steps))
    by_type: dict = field(default_factory=lambda: defaultdict(_steps))
    by_day: dict = field(default_factory=lambda: defaultdict(_steps))
    by_week: dict = field(default_factory=lambda: defaultdict(_steps))
    by_hour: dict = field(default_factory=lambda: defaultdict(_steps))  # WITA hour of day, summed over days
    by_child: dict = field(default_factory=lambda: defaultdict(_steps))

    def as_dict(self) -> dict:
        """Plain JSON-ready form."""
        def plain(table):
            return {(" / ".join(k) if isinstance(k, tuple) else k): dict(v) for k, v in sorted(table.items())}
        return {
            "scope": self.scope, "from": self.days[0], "to": self.days[-1], "steps": list(STEPS),
            "totals": dict(self.totals), "unique_devices": dict(self.uniques), "held_for_review": self.held,
            "by_variant": plain(self.by_variant), "by_lang": plain(self.by_lang), "by_type": plain(self.by_type),
            "by_day": plain(self.by_day), "by_week": plain(self.by_week), "by_hour": plain(self.by_hour),
            "by_child": plain(self.by_child),
        }


def read(client, scope: str, days: list[str], *, campaign: str | None = None) -> Report:
    """Aggregate the counters of *scope* over *days*, optionally for one campaign only."""
    report = Report(scope=scope, days=days)
    with client.pipeline(transaction=False) as pipe:
        for day in days:
            pipe.hgetall(COUNTERS.format(scope=scope, day=day))
        hashes = pipe.execute()
    seen: dict[str, set] = defaultdict(set)  # step -> {(campaign, variant)} for the uniques
    for day, fields in zip(days, hashes):
        for raw, raw_count in fields.items():
            parts = raw.decode().split("|")
            count = int(raw_count)
            if parts[0] == "t" and len(parts) == 6:
                _, step, camp, variant, lang, site_type = parts
                if campaign is not None and camp != campaign:
                    continue
                if step == "complaint_held":
                    report.held += count
                    continue
                if step not in report.totals:
                    continue
                seen[step].add((camp, variant))
                report.totals[step] += count
                report.by_variant[(camp, variant)][step] += count
                report.by_lang[lang or UNKNOWN][step] += count
                report.by_type[site_type or UNKNOWN][step] += count
                report.by_day[day][step] += count
                report.by_week[week_of(day)][step] += count
            elif parts[0] in ("h", "r") and len(parts) == 5:
                _, key, step, camp, _variant = parts
                if step not in report.totals or (campaign is not None and camp != campaign):
                    continue
                (report.by_hour if parts[0] == "h" else report.by_child)[key][step] += count
    with client.pipeline(transaction=False) as pipe:
        steps = [step for step in STEPS if seen[step]]
        for step in steps:
            keys = [UNIQUES.format(scope=scope, day=day, step=step, campaign=c, variant=v)
                    for day in days for c, v in sorted(seen[step])]
            pipe.pfcount(*keys)
        for step, count in zip(steps, pipe.execute()):
            report.uniques[step] = int(count)
    return report


def variant_uniques(client, scope: str, days: list[str], campaign: str, variant: str) -> dict[str, int]:
    """Unique devices per step for one campaign variant (for the A/B table)."""
    with client.pipeline(transaction=False) as pipe:
        for step in STEPS:
            pipe.pfcount(*[UNIQUES.format(scope=scope, day=d, step=step, campaign=campaign, variant=variant)
                           for d in days])
        return dict(zip(STEPS, (int(n) for n in pipe.execute())))
