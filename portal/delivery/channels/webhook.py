"""A signed JSON webhook, for the province's own case system.

The body is the canonical payload as JSON; ``X-Portal-Timestamp`` and
``X-Portal-Signature`` sign it (``portal.delivery.signing``) and
``Idempotency-Key`` carries the tracking number.
"""
from __future__ import annotations

import json
from typing import ClassVar

from ..signing import sign
from .base import Receipt, Route
from .http import IDEMPOTENCY_HEADER, Sessions, post


class WebhookChannel:
    """POST the payload, signed with HMAC-SHA256, to ``url``."""

    kind: ClassVar[str] = "webhook"

    def __init__(self, *, name: str, url: str, secret: str, timeout: float = 10.0, when: dict | None = None):
        if not secret:
            raise ValueError("a webhook needs secret_env")
        self.name, self.url, self.secret, self.timeout = name, url, secret, float(timeout)
        self.route = Route.from_spec(when)
        self.sessions = Sessions()

    def send(self, payload: dict, *, key: str) -> Receipt:
        """Deliver *payload*; the receiver's answer is not needed."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: key, **sign(self.secret, body)}
        post(self.sessions.get(), self.url, body=body, headers=headers, timeout=self.timeout)
        return Receipt()
