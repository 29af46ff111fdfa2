"""The A/B intervals against a reference computed here independently, and published values."""
from __future__ import annotations

import math

import pytest

from portal import abtest

Z95 = 1.959963984540054  # NormalDist().inv_cdf(0.975), written out


def wilson_by_quadratic(x: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's bounds as the roots of (p̂ - p)² = z² p (1 - p) / n, solved as a quadratic in p."""
    p_hat = x / n
    a = 1 + z * z / n
    b = -(2 * p_hat + z * z / n)
    c = p_hat * p_hat
    root = math.sqrt(b * b - 4 * a * c)
    return (-b - root) / (2 * a), (-b + root) / (2 * a)


@pytest.mark.parametrize("x,n", [(0, 10), (1, 10), (5, 10), (81, 263), (15, 148), (3, 1000), (999, 1000)])
def test_wilson_matches_the_quadratic(x, n):
    low, high = abtest.wilson(x, n)
    ref_low, ref_high = wilson_by_quadratic(x, n)
    assert low == pytest.approx(max(0.0, ref_low), abs=1e-12)
    assert high == pytest.approx(min(1.0, ref_high), abs=1e-12)


def test_published_values():
    # Newcombe (1998), Statistics in Medicine 17: Wilson for 81/263 and method 10 for 56/70 - 48/80.
    assert [round(v, 4) for v in abtest.wilson(81, 263)] == [0.2553, 0.3662]
    assert [round(v, 4) for v in abtest.newcombe(56, 70, 48, 80)] == [0.0524, 0.3339]
    assert [round(v, 4) for v in abtest.newcombe(9, 10, 3, 10)] == [0.1705, 0.8090]


def test_newcombe_matches_its_definition():
    s1, n1, s2, n2 = 40, 1200, 22, 1100
    l1, u1 = wilson_by_quadratic(s1, n1)
    l2, u2 = wilson_by_quadratic(s2, n2)
    d = s1 / n1 - s2 / n2
    expected = (d - math.hypot(s1 / n1 - l1, u2 - s2 / n2), d + math.hypot(u1 - s1 / n1, s2 / n2 - l2))
    assert abtest.newcombe(s1, n1, s2, n2) == pytest.approx(expected, abs=1e-12)


def test_verdicts_say_when_there_is_not_enough_data():
    assert abtest.compare((3, 20), (1, 20))["verdict"] == "not_enough_data"
    assert abtest.compare((120, 1000), (60, 1000))["verdict"] == "a_higher"
    assert abtest.compare((60, 1000), (120, 1000))["verdict"] == "b_higher"
    assert abtest.compare((61, 1000), (60, 1000))["verdict"] == "no_difference"


def test_variants_table():
    table = abtest.variants_table({("ramah", "a"): {"impression": 1000, "complaint": 60, "grant": 900},
                                   ("ramah", "b"): {"impression": 1000, "complaint": 120, "grant": 880},
                                   ("lain", ""): {"impression": 5}}, "ramah")
    assert [r["variant"] for r in table["rows"]] == ["a", "b"]
    assert table["rows"][1]["vs_first"]["complaint"]["verdict"] == "a_higher"  # b (as "a" of compare) is higher
    assert table["rows"][1]["complaint"].value == pytest.approx(0.12)
