"""What every channel implements, what it returns, and the errors it may raise."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol


class DeliveryError(Exception):
    """A channel could not deliver; ``detail`` is for logs and never holds complaint text."""

    def __init__(self, detail: str, *, code: int | None = None):
        super().__init__(detail)
        self.detail = detail
        self.code = code


class TemporaryError(DeliveryError):
    """Try again later: timeouts, refused connections, 5xx, 429. The worker backs off."""


class PermanentError(DeliveryError):
    """Trying again will not help (4xx: bad token, rejected payload); goes to the dead letters.

    Fix the cause (token, field mapping), then ``flask --app portal deadletters retry``.
    """


@dataclass(frozen=True)
class Receipt:
    """What a receiver answered: its own id and public link for the complaint, when it gives them.

    Example: ``Receipt(remote_id="1916449", url="https://www.lapor.go.id/laporan/1916449")``.
    """

    remote_id: str = ""
    url: str = ""


@dataclass(frozen=True)
class Route:
    """Which complaints a channel takes: each field must hold one of its listed values."""

    when: tuple[tuple[str, frozenset], ...] = ()

    @classmethod
    def from_spec(cls, when: dict | None) -> "Route":
        return cls(tuple((key, frozenset(str(v) for v in values)) for key, values in (when or {}).items()))

    def matches(self, record: dict) -> bool:
        """True when *record* (plain fields) satisfies every rule."""
        return all(record.get(key, "") in values for key, values in self.when)


class Channel(Protocol):
    """One place complaints are delivered to.

    ``send(payload, key=tracking)`` delivers the canonical payload (see
    ``portal.delivery.payload``) and returns a :class:`Receipt`, or raises
    :class:`TemporaryError` / :class:`PermanentError`. *key* is the
    complaint's idempotency key: the same key sent twice must be one
    complaint at the receiver, so a resend after a lost answer is harmless.
    """

    kind: ClassVar[str]
    name: str
    route: Route

    def send(self, payload: dict, *, key: str) -> Receipt: ...
