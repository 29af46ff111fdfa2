"""Server-side portal sessions: the only place raw MAC and IP addresses live.

The phone's portal window keeps no cookies, so the session id travels in the
page's URLs and forms (``/p/<token>/…``). Normally the token is a random id
of a Redis key that expires after ``SESSION_TTL`` seconds. When Redis is
down the token instead carries the session itself, encrypted and
time-limited (prefix ``x.``), so the resident can still be granted access.

The raw MAC and IP must not reach the disk (PDP law; Redis writes every command to its
AOF, and replicas and backups copy it). So a session is stored sealed under a key that
only its token opens: the Redis key is ``portal:sess:<HMAC(token)>`` and the value is
AES-GCM under another HMAC of the token. The token itself lives only in the resident's
URLs, never in Redis, the AOF or a log, so what Redis keeps is unreadable without it.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app

from hotspot_hooks import Arrival

from . import ride_along
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
    #: (json, blob) of the last seal of this session (saved or loaded): its page copy costs no crypto.
    sealed: tuple[str, bytes] | None = field(default=None, repr=False, compare=False)

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
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, token: str, text: str | bytes) -> "PortalSession":
        data = json.loads(text)
        # Sessions stored before 2026-12-04 listed their tracking numbers, which nothing read: a
        # write per complaint for nothing. Such a record still opens for the rest of its life.
        data.pop("complaints", None)
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
    so the resident can file a complaint and get online. The copy is the very record
    Redis holds (sealed under the token's own key, see :func:`seal_record`): a page
    that just saved or loaded its session carries it without sealing anything again.
    """
    text = session.to_json()
    if session.sealed is None or session.sealed[0] != text:
        session.sealed = (text, seal_record(session.token, text)[1])
    return page_copy(session.sealed[1])


def page_copy(blob: bytes) -> str:
    """The page-borne form of a sealed record: URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(blob).decode().rstrip("=")


def is_durable_token(token: str) -> bool:
    """True for what could be a Redis session's token in a path: not a fallback, ASCII, no slash, short."""
    return bool(token) and len(token) <= 64 and token.isascii() and "/" not in token \
        and not token.startswith(FALLBACK_PREFIX)


def token_keys(secret: bytes, token: str) -> tuple[str, bytes]:
    """Return the Redis key and the AES key of *token*'s session under *secret* (``SECRET_KEY``)."""
    digest = hmac.new(secret, b"session\0" + token.encode(), hashlib.sha512).digest()
    return KEY.format(digest[:16].hex()), digest[32:]


def _token_keys(token: str) -> tuple[str, bytes]:
    return token_keys(current_app.config["SECRET_KEY"].encode(), token)


def seal_record(token: str, text: str) -> tuple[str, bytes]:
    """Return the Redis key of *token* and *text* encrypted under the token's own key."""
    key, aes_key = _token_keys(token)
    nonce = os.urandom(12)
    return key, nonce + AESGCM(aes_key).encrypt(nonce, text.encode(), key.encode())


def open_record(token: str, key: str, blob: bytes) -> str | None:
    """Return what :func:`seal_record` sealed, or None if *blob* does not open with *token*."""
    return open_sealed(_token_keys(token)[1], key, blob)


def open_sealed(aes_key: bytes, key: str, blob: bytes) -> str | None:
    """Return what :func:`seal_record` sealed under *aes_key* for *key*, or None if it does not open."""
    try:
        return AESGCM(aes_key).decrypt(blob[:12], blob[12:], key.encode()).decode()
    except (InvalidTag, ValueError):
        return None


def save(session: PortalSession, pipe=None) -> None:
    """Store *session*, sealed, for ``SESSION_TTL`` seconds (on *pipe* if given)."""
    target = pipe if pipe is not None else get_redis()
    key, blob = seal(session)
    target.set(key, blob, ex=current_app.config["SESSION_TTL"])


def seal(session: PortalSession) -> tuple[str, bytes]:
    """The Redis key and sealed record of *session*, as :func:`save` stores them (kept as its page copy)."""
    text = session.to_json()
    key, blob = seal_record(session.token, text)
    session.sealed = (text, blob)
    remember_site(key, session.site_id)
    return key, blob


#: The site of recently seen sessions, by Redis key (a keyed hash of the token; a site id is not
#: personal data). portal/fast_lane.py counts a form against its site on the session's own round
#: trip when it knows the site here, instead of a second trip once the session is read.
SITE_HINTS: dict[str, str] = {}
SITE_HINT_SIZE = 16384  # sessions; cleared whole when full (a miss costs one round trip more)


def remember_site(key: str, site_id: str) -> None:
    """Note that the session at *key* belongs to *site_id* (a session's site never changes)."""
    if len(SITE_HINTS) >= SITE_HINT_SIZE:
        SITE_HINTS.clear()
    SITE_HINTS[key] = site_id


def load(token: str, fallback: str = "") -> PortalSession | None:
    """Return the session of *token*, or None if it expired or never existed.

    *fallback* is the page's copy (see :func:`fallback_blob`), used only when
    Redis cannot be reached.
    """
    if not token or len(token) > 4096 or not token.isascii():
        return None
    if token.startswith(FALLBACK_PREFIX):
        return _from_data(token, _unseal(token[len(FALLBACK_PREFIX):]))
    if len(token) > 64:
        return None
    key, aes_key = _token_keys(token)
    try:
        # The request's limit counters ride on this round trip (portal/ride_along.py).
        [blob] = ride_along.execute(get_redis(), lambda pipe: pipe.get(key))
    except DOWN_ERRORS:
        report_failure()
        return _from_fallback(token, fallback)
    text = open_sealed(aes_key, key, blob) if blob else None
    if not text:
        return None
    session = PortalSession.from_json(token, text)
    session.sealed = (text, blob)
    return session


def _unseal(sealed: str) -> dict | None:
    """Decrypt a page- or token-borne session copy; None if altered, expired or not ours."""
    if not sealed or len(sealed) > 4096 or not sealed.isascii():
        return None
    try:
        data = get_crypto().unseal(sealed, ttl=current_app.config["SESSION_TTL"])
    except (InvalidToken, ValueError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def _from_data(token: str, data: dict | None) -> PortalSession | None:
    """Rebuild a session from decrypted data; a copy we cannot read as one counts as none."""
    if data is None:
        return None
    try:
        return PortalSession.from_json(token, json.dumps(data))
    except (TypeError, KeyError, ValueError):
        return None


def _from_fallback(token: str, fallback: str) -> PortalSession | None:
    """The session of a page's copy (:func:`fallback_blob`), if it opens with *token* and is still live."""
    if not fallback or len(fallback) > 4096 or not fallback.isascii():
        return None
    try:
        blob = base64.urlsafe_b64decode(fallback + "=" * (-len(fallback) % 4))
    except (binascii.Error, ValueError):
        return None
    key, _ = _token_keys(token)
    text = open_record(token, key, blob)
    if text is None:
        return None
    try:
        session = PortalSession.from_json(token, text)
    except (TypeError, KeyError, ValueError):
        return None
    # A copy lives as long as the record it copies: SESSION_TTL from its last save.
    if time.time() - max(session.created, session.granted) > current_app.config["SESSION_TTL"]:
        return None
    return session


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
