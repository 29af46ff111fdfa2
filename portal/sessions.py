"""Server-side portal sessions: the only place raw MAC and IP addresses live.

The phone's portal window keeps no cookies, so the session id travels in the
page's URLs and forms (``/p/<token>/…``). Normally the token is a random id
of a Redis key that expires after ``SESSION_TTL`` seconds. When Redis is
down the token instead carries the session itself, encrypted and
time-limited (prefix ``x.``), so the resident can still be granted access.
"""
from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field

from flask import current_app

from hotspot_hooks import Arrival

from .crypto import InvalidToken, get_crypto
from .redis import DOWN_ERRORS, get_redis, report_failure

KEY = "portal:sess:{}"
FALLBACK_PREFIX = "x."


@dataclass
class PortalSession:
    """One resident's visit, from arrival to grant."""

    token: str
    arrival: Arrival
    site_id: str = ""
    lang: str = ""
    device: str = ""
    campaign: str = ""
    created: float = field(default_factory=time.time)
    granted: float = 0.0
    minutes: int = 0
    complaints: list[str] = field(default_factory=list)

    @property
    def durable(self) -> bool:
        """False for a fallback session carried in its token (Redis was down)."""
        return not self.token.startswith(FALLBACK_PREFIX)

    def to_dict(self) -> dict:
        """The session as plain data, without its token (hand-built: asdict is slow here)."""
        a = self.arrival
        return {
            "arrival": {"vendor": a.vendor, "gateway_id": a.gateway_id, "client_mac": a.client_mac,
                        "client_ip": a.client_ip, "original_url": a.original_url, "extra": dict(a.extra)},
            "site_id": self.site_id, "lang": self.lang, "device": self.device, "campaign": self.campaign,
            "created": self.created, "granted": self.granted, "minutes": self.minutes,
            "complaints": list(self.complaints),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, token: str, text: str | bytes) -> "PortalSession":
        data = json.loads(text)
        data["arrival"] = Arrival(**data["arrival"])
        return cls(token=token, **data)


def new_token() -> str:
    """Return a fresh, unguessable session id."""
    return secrets.token_urlsafe(18)


def fallback_token(session: PortalSession) -> str:
    """Return a token that carries *session* itself, encrypted (used while Redis is down)."""
    return FALLBACK_PREFIX + get_crypto().seal(session.to_dict())


def fallback_blob(session: PortalSession) -> str:
    """Return a copy of a durable session that its pages carry, bound to its token.

    If Redis dies mid-journey, the next form post still carries the session,
    so the resident can file a complaint and get online.
    """
    return get_crypto().seal({"token": session.token, **session.to_dict()})


def save(session: PortalSession, pipe=None) -> None:
    """Store *session* for ``SESSION_TTL`` seconds (on *pipe* if given)."""
    target = pipe if pipe is not None else get_redis()
    target.set(KEY.format(session.token), session.to_json(), ex=current_app.config["SESSION_TTL"])


def load(token: str, fallback: str = "") -> PortalSession | None:
    """Return the session of *token*, or None if it expired or never existed.

    *fallback* is the page's copy (see :func:`fallback_blob`), used only when
    Redis cannot be reached.
    """
    if not token or len(token) > 4096:
        return None
    if token.startswith(FALLBACK_PREFIX):
        try:
            data = get_crypto().unseal(token[len(FALLBACK_PREFIX):], ttl=current_app.config["SESSION_TTL"])
        except (InvalidToken, ValueError, TypeError):
            return None
        return PortalSession.from_json(token, json.dumps(data))
    try:
        raw = get_redis().get(KEY.format(token))
    except DOWN_ERRORS:
        report_failure()
        return _from_fallback(token, fallback)
    return PortalSession.from_json(token, raw) if raw else None


def _from_fallback(token: str, fallback: str) -> PortalSession | None:
    if not fallback or len(fallback) > 4096:
        return None
    try:
        data = get_crypto().unseal(fallback, ttl=current_app.config["SESSION_TTL"])
    except (InvalidToken, ValueError, TypeError):
        return None
    if data.pop("token", None) != token:
        return None
    return PortalSession.from_json(token, json.dumps(data))


def update(session: PortalSession) -> PortalSession:
    """Persist a changed session; a fallback session gets a new token instead."""
    if not session.durable:
        session.token = fallback_token(session)
        return session
    try:
        save(session)
    except DOWN_ERRORS:
        report_failure()
        session.token = fallback_token(session)
    return session
