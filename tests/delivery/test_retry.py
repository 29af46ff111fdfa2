"""The backoff schedule of ``Retry``."""
from __future__ import annotations

import random

import pytest

from portal.delivery.retry import Retry


def test_backoff_doubles_up_to_the_cap():
    retry = Retry(max=10, base=30, cap=600, jitter=0.5)
    assert [retry.ceiling(n) for n in range(1, 8)] == [30, 60, 120, 240, 480, 600, 600]


def test_jitter_stays_within_half_of_the_ceiling_and_spreads():
    retry = Retry(max=10, base=30, cap=600, jitter=0.5)
    rng = random.Random(4)
    delays = [retry.delay(3, rng) for _ in range(200)]
    assert all(60 <= d <= 120 for d in delays)
    assert max(delays) - min(delays) > 30  # workers failing together do not come back together


def test_no_jitter_is_the_exact_schedule_and_huge_attempts_do_not_overflow():
    retry = Retry(max=3, base=1, cap=3600, jitter=0)
    assert [retry.delay(n) for n in (1, 2, 3)] == [1, 2, 4]
    assert retry.delay(10_000) == 3600
    assert not retry.exhausted(2) and retry.exhausted(3)


@pytest.mark.parametrize("kwargs", [{"max": 0}, {"base": 0}, {"base": 10, "cap": 5}, {"jitter": 1.5}])
def test_retry_validates_itself(kwargs):
    with pytest.raises(ValueError):
        Retry(**kwargs)
