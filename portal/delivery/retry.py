"""The retry policy: exponential backoff with jitter and a cap (RQ's ``Retry``, with a schedule)."""
from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Retry:
    """How often and how long to wait before trying a complaint again.

    Attempt *n* (1-based) failed: wait ``min(cap, base * 2**(n-1))`` seconds,
    scaled down by up to ``jitter`` (0..1) so workers that failed together do
    not all come back in the same second. After ``max`` attempts the complaint
    goes to the dead-letter stream.
    """

    max: int = 8
    base: float = 30.0
    cap: float = 3600.0
    jitter: float = 0.5

    def __post_init__(self):
        if self.max < 1:
            raise ValueError("Retry.max must be at least 1")
        if self.base <= 0 or self.cap < self.base:
            raise ValueError("Retry needs 0 < base <= cap")
        if not 0 <= self.jitter <= 1:
            raise ValueError("Retry.jitter must be between 0 and 1")

    def ceiling(self, attempt: int) -> float:
        """The delay after failed attempt *attempt* before jitter."""
        # Cap the exponent too, so a huge attempt count cannot overflow a float.
        return min(self.cap, self.base * 2 ** min(attempt - 1, 62))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt *attempt*."""
        ceiling = self.ceiling(attempt)
        return ceiling * (1 - self.jitter * (rng or random).random())

    def exhausted(self, attempt: int) -> bool:
        """True when *attempt* was the last one allowed."""
        return attempt >= self.max
