"""CoovaChilli UAM (and Ruckus-legacy, LigoWave, OpenMesh... built on it), gateways.md §3.

Chilli redirects to ``uamserver?res=…&uamip=…&uamport=…&challenge=…&…&md=<MD5>``.
``md`` is MD5 over the URL exactly as chilli built it (``uamserver`` + ``?`` + the query
up to ``&md=``) followed by the uamsecret, upper-case hex. It can only be checked on the
raw bytes, so the portal passes the raw query as ``_query`` and the URL it was reached
at as ``_url`` (a site may name its configured ``options["uamserver"]`` instead, for
a portal behind an address rewrite).

Access is granted by the browser: ``GET http://<uamip>:<uamport>/logon?username=…&response=…``
with the CHAP response computed here, server-side, because a browser-side ChilliLibrary
ignores the uamsecret (coova-chilli#221). ``login_mode="pap"`` sends the PAP form instead.
``uamip`` must be one of the site's ``router_hosts`` (:mod:`hotspot_hooks.guards`).

A password the resident could read back is refused unless the site opts in
(``allow_pap=yes``, with its own ``password`` secret): chilli without a challenge
(``nochallenge``) takes it in clear, and PAP without a uamsecret is the password XOR a
challenge the resident sees. The fleet password only ever leaves as a CHAP response.

``res`` other than ``notyet`` (``success``, ``already``, ``logoff``, ``failed``) is
reported as ``extra["outcome"]`` for the portal to show a page about it.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from typing import ClassVar, Mapping
from urllib.parse import parse_qsl, urlencode

from .base import Arrival, ArrivalError, Grant, SignatureError, SiteSettings
from .guards import chap_password, clear_password, pinned
from .urls import normalize_mac, safe_http_url

#: Keys the portal adds to the arrival parameters (it overwrites any a client sent).
RAW_QUERY = "_query"
REQUEST_URL = "_url"
OUTCOMES = ("success", "already", "logoff", "failed")
_HEX32 = re.compile(r"^[0-9A-Fa-f]{32}$")
_HOST = re.compile(r"^[A-Za-z0-9.\-]{1,253}$")
_PORT = re.compile(r"^[0-9]{1,5}$")
_REASONS = ("reject", "timeout", "mtu", "other")


def expected_md(url: str, uamsecret: str) -> str:
    """Return chilli's ``md`` for *url* (everything before ``&md=``): MD5(url ‖ uamsecret), upper hex."""
    return hashlib.md5((url + uamsecret).encode("latin-1")).hexdigest().upper()


def new_challenge(challenge_hex: str, uamsecret: str) -> bytes:
    """Return the challenge chilli checks against: MD5(challenge ‖ uamsecret), or the challenge."""
    challenge = bytes.fromhex(challenge_hex)
    return hashlib.md5(challenge + uamsecret.encode()).digest() if uamsecret else challenge


def chap_response(challenge_hex: str, password: str, uamsecret: str, ident: int = 0) -> str:
    """Return hex MD5(ident ‖ password ‖ newchal), as doc/hotspotlogin.cgi computes it."""
    return hashlib.md5(bytes([ident]) + password.encode() + new_challenge(challenge_hex, uamsecret)).hexdigest()


def pap_password(challenge_hex: str, password: str, uamsecret: str) -> str:
    """Return hex(password XOR newchal repeated), chilli's PAP encoding on /logon."""
    key = new_challenge(challenge_hex, uamsecret)
    return bytes(b ^ key[i % len(key)] for i, b in enumerate(password.encode())).hex()


def verify_md(args: Mapping[str, str], uamsecret: str, uamserver: str = "") -> dict[str, str]:
    """Raise SignatureError unless ``md`` signs the raw query under *uamsecret*.

    Returns the fields of the signed query itself (first value of each name): a form
    body or anything else the portal merged into *args* is not covered by ``md``.
    """
    query = args.get(RAW_QUERY, "")
    head, sep, md = query.rpartition("&md=")
    # chilli appends md last: anything after it was added by someone else.
    if not sep or not _HEX32.match(md):
        raise SignatureError("CoovaChilli arrival is not signed (no md) but the site has a uamsecret")
    base = uamserver or args.get(REQUEST_URL, "")
    if not hmac.compare_digest(expected_md(f"{base}?{head}", uamsecret), md.upper()):
        raise SignatureError("CoovaChilli md does not match: forged or altered redirect")
    signed: dict[str, str] = {}
    # The raw query reaches us as latin-1 text of its bytes; its values are UTF-8 once unquoted.
    for name, value in parse_qsl(head.encode("latin-1").decode("utf-8", "replace"), keep_blank_values=True):
        signed.setdefault(name, value)
    return signed


class CoovachilliHook:
    """Adapter for CoovaChilli's Universal Access Method."""

    vendor: ClassVar[str] = "coovachilli"
    server_side: ClassVar[bool] = False
    #: ``md`` is keyed with the site's uamsecret: parse again once the site is known.
    signed: ClassVar[bool] = True
    supports_deauth: ClassVar[bool] = False

    def parse_arrival(self, args: Mapping[str, str], *, settings: SiteSettings | None = None) -> Arrival:
        """Read chilli's redirect, verifying ``md`` when the site has a uamsecret."""
        uamsecret = settings.secrets.get("uamsecret", "") if settings else ""
        if uamsecret:
            args = verify_md(args, uamsecret, settings.options.get("uamserver", ""))
        res = (args.get("res") or "notyet").strip()
        extra = {"res": res if res in OUTCOMES else "notyet"}
        if uamsecret:
            extra["signed"] = "md"  # only a verified challenge is worth claiming as a nonce
        if extra["res"] != "notyet":
            extra["outcome"] = extra["res"]
        if extra["res"] == "failed" and args.get("reason") in _REASONS:
            extra["reason"] = args["reason"]
        uamip, uamport = (args.get("uamip") or "").strip(), (args.get("uamport") or "").strip()
        if extra["res"] in ("notyet", "failed"):
            if not _HOST.match(uamip) or not _PORT.match(uamport) or not 0 < int(uamport) < 65536:
                raise ArrivalError("CoovaChilli sent no usable uamip/uamport")
            extra.update(uamip=uamip, uamport=uamport)
        challenge = (args.get("challenge") or "").strip()
        if challenge:
            if not _HEX32.match(challenge):
                raise ArrivalError("malformed CoovaChilli challenge: 16 hex bytes expected")
            extra["challenge"] = challenge.lower()
        # nasid names the chilli instance; 'called' (the NAS MAC) when no nasid is set.
        gateway = (args.get("nasid") or "").strip() or normalize_mac(args.get("called"))
        return Arrival(
            vendor=self.vendor,
            gateway_id=gateway[:128],
            client_mac=normalize_mac(args.get("mac")),
            client_ip=(args.get("ip") or "").strip()[:45],
            original_url=safe_http_url(args.get("userurl")),
            extra=extra,
        )

    def replay_key(self, arrival: Arrival) -> str:
        """Return the challenge of a verified redirect: chilli draws a fresh one for each."""
        # Anyone can build an unsigned redirect, so claiming its challenge protects nothing
        # and would only refuse a resident who reloads the page.
        if arrival.extra.get("signed") and arrival.extra.get("res") in ("notyet", "failed"):
            return arrival.extra.get("challenge", "")
        return ""

    def authorize(self, arrival: Arrival, settings: SiteSettings) -> Grant:
        """Return the browser's GET to chilli's /logon with the response computed here."""
        extra = arrival.extra
        if extra.get("res") not in ("notyet", "failed"):
            raise ArrivalError(f"nothing to log in: CoovaChilli reported res={extra.get('res')}")
        if not settings.username:
            raise ArrivalError("set the site's username: CoovaChilli logs in through RADIUS")
        uamip = pinned(extra["uamip"], settings)
        uamsecret = settings.secrets.get("uamsecret", "")
        query = {"username": settings.username}
        challenge = extra.get("challenge", "")
        if not challenge:
            query["password"] = clear_password(settings, "CoovaChilli sent no challenge")  # 'nochallenge'
        elif settings.login_mode == "pap":
            # Without a uamsecret the XOR key is the challenge itself: as good as clear.
            password = chap_password(settings) if uamsecret else clear_password(settings, "PAP without uamsecret")
            query["password"] = pap_password(challenge, password, uamsecret)
        else:
            query["response"] = chap_response(challenge, chap_password(settings), uamsecret)
        if arrival.original_url:
            query["userurl"] = arrival.original_url
        return Grant(kind="redirect", url=f"http://{uamip}:{extra['uamport']}/logon?{urlencode(query)}")
