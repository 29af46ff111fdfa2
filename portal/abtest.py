"""A/B results: rates with Wilson score intervals and Newcombe's interval for their difference.

Wilson's interval behaves at small counts and near 0 % (complaint rates are small), where the
textbook normal interval goes below zero. Newcombe's method 10 combines two Wilson intervals
into one for the difference of two independent proportions. A comparison is only called when
both variants have enough impressions and the difference interval excludes zero.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

#: Below this many impressions in a variant, its rates are shown but no winner is called.
MIN_IMPRESSIONS = 100
#: ...and below this many successes or failures the interval is too wide to say anything.
MIN_EVENTS = 5


def z_for(confidence: float) -> float:
    """The two-sided normal quantile for *confidence* (1.96 for 0.95)."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion; (0, 1) when there are no trials."""
    if trials <= 0:
        return 0.0, 1.0
    z = z_for(confidence)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(s1: int, n1: int, s2: int, n2: int, confidence: float = 0.95) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p1 - p2 (method 10)."""
    p1, p2 = (s1 / n1 if n1 else 0.0), (s2 / n2 if n2 else 0.0)
    l1, u1 = wilson(s1, n1, confidence)
    l2, u2 = wilson(s2, n2, confidence)
    d = p1 - p2
    lower = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return lower, upper


@dataclass
class Rate:
    """One rate of one variant: successes out of trials, with its interval."""

    successes: int
    trials: int
    low: float
    high: float

    @property
    def value(self) -> float:
        return self.successes / self.trials if self.trials else 0.0


def rate(successes: int, trials: int, confidence: float = 0.95) -> Rate:
    """A rate with its Wilson interval."""
    low, high = wilson(successes, trials, confidence)
    return Rate(successes, trials, low, high)


def enough(successes: int, trials: int) -> bool:
    """True when a variant's count supports a comparison."""
    return trials >= MIN_IMPRESSIONS and min(successes, trials - successes) >= MIN_EVENTS


def compare(a: tuple[int, int], b: tuple[int, int], confidence: float = 0.95) -> dict:
    """Compare (successes, trials) of variants a and b: difference interval and a plain verdict.

    ``verdict`` is ``"not_enough_data"``, ``"no_difference"``, ``"a_higher"`` or ``"b_higher"``.
    """
    low, high = newcombe(a[0], a[1], b[0], b[1], confidence)
    if not (enough(*a) and enough(*b)):
        verdict = "not_enough_data"
    elif low > 0:
        verdict = "a_higher"
    elif high < 0:
        verdict = "b_higher"
    else:
        verdict = "no_difference"
    return {"low": low, "high": high, "verdict": verdict}


def variants_table(by_variant: dict, campaign: str, confidence: float = 0.95) -> dict:
    """Complaint and grant rates per variant of *campaign*, and the comparison to the first variant."""
    rows = []
    for (camp, variant), steps in sorted(by_variant.items()):
        if camp != campaign:
            continue
        shown = steps.get("impression", 0)
        rows.append({
            "variant": variant,
            "impressions": shown,
            "complaint": rate(min(steps.get("complaint", 0), shown), shown, confidence),
            "grant": rate(min(steps.get("grant", 0), shown), shown, confidence),
        })
    for row in rows[1:]:
        base = rows[0]
        row["vs_first"] = {
            step: compare((row[step].successes, row[step].trials), (base[step].successes, base[step].trials),
                          confidence)
            for step in ("complaint", "grant")}
    return {"campaign": campaign, "confidence": confidence, "rows": rows}
