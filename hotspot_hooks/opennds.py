"""openNDS (OpenWrt) Forwarding Authentication Service, security levels 0–4 (gateways.md §2).

What the router sends, by ``fas_secure_enabled``:

- 0: ``authaction``, ``tok``, ``gatewayname``, ``redir``, ``clientip`` in clear;
- 1 and 4: ``fas=<base64 payload>`` (anyone can build it: nothing is signed);
- 2 and 3: ``fas=<base64(base64(AES-256-CBC))>&iv=<16 chars>`` under the faskey: the
  only authenticity openNDS offers, so a payload that does not decrypt is refused.

The payload is ``name=value`` pairs joined by ``", "`` with URL-encoded values.

How access is granted:

- levels 0–2: the browser GETs ``http://<gatewayaddress>/<authdir>/?tok=<rhid>&redir=…``;
- levels 3/4 (**authmon**): the router polls the portal; :meth:`OpenndsHook.authorize`
  returns a ``"gateway"`` grant carrying the auth-list entry the portal queues for it.

The site chooses with ``options["fas_secure_enabled"]`` (openNDS's own option name, which
the operator kit writes too); when set, an arrival in another format is refused (a
downgrade from AES to plain base64 would drop the only check). Levels 2/3 encrypt the
gateway's name, so the site is unknown until the payload is decrypted: the first parse
uses the fleet faskey (``PORTAL_OPENNDS_FASKEY``).

openNDS 10+ appends ``" Node:<id> "`` to ``gatewayname`` by default
(``enable_serial_number_suffix``): the id is kept in ``extra["node"]`` and the registry
finds the site with or without it (:func:`split_node_suffix`).

Level 2/3 replay protection is keyed on the ciphertext, never on the IV: CBC lets anyone
change the IV of a captured redirect and it still decrypts (only the first block, the
``hid``, changes), while the router encrypts every redirect under a fresh IV, so a new
ciphertext is a new redirect even for a resident who comes back with the same ``hid``.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import ClassVar, Mapping
from urllib.parse import unquote, urlencode, urlsplit

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .base import Arrival, ArrivalError, Grant, SignatureError, SiteSettings
from .guards import pinned
from .urls import normalize_mac, safe_http_url

QUERY_SEPARATOR = ", "
#: The site option naming the router's security level: openNDS's own name, also in the kit.
LEVEL_OPTION = "fas_secure_enabled"
#: Keys the portal adds to the arrival parameters for a FAS path naming a site (it
#: overwrites any a client sent): that site's faskey and registered gateway name.
PATH_FASKEY = "_path_faskey"
PATH_GATEWAY = "_path_gateway"
#: Passed to BinAuth on the router with each authmon authorization; carries no personal data.
AUTHMON_CUSTOM = base64.b64encode(b"bali-wifi-portal").decode()
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_TOKEN = re.compile(r"^[0-9a-f]{8}$")
_IV = re.compile(r"^[0-9A-Za-z]{16}$")
_HOSTPORT = re.compile(r"^[A-Za-z0-9.\-]{1,253}(:[0-9]{1,5})?$")
_AUTHDIR = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_NODE_SUFFIX = re.compile(r"^(?P<base>.*\S)\s+Node:(?P<node>[0-9A-Za-z]{1,32})$")
_PRINTABLE = re.compile(r"^[\x20-\x7e]*$")
#: fas_secure_enabled -> the arrival format the router uses at that level.
_FORMAT = {"0": "0", "1": "1", "4": "1", "2": "2", "3": "2"}


def _aes(faskey: str, iv: str) -> Cipher:
    # PHP's openssl_* NUL-pads a short key and AES-256 uses the first 32 bytes of a
    # long one; the IV is the 16 ASCII characters themselves (openNDS#438, #653).
    key = faskey.encode()[:32].ljust(32, b"\0")
    return Cipher(algorithms.AES(key), modes.CBC(iv.encode("ascii")))


def decrypt_payload(fas: str, iv: str, faskey: str) -> str:
    """Decrypt a level 2/3 ``fas`` value; raises SignatureError when it does not decrypt."""
    try:
        ciphertext = base64.b64decode(base64.b64decode(fas, validate=True), validate=True)
        decryptor = _aes(faskey, iv).decryptor()
        unpadder = padding.PKCS7(128).unpadder()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        plain = (unpadder.update(padded) + unpadder.finalize()).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError) as error:
        raise SignatureError("openNDS payload does not decrypt with this faskey") from error
    # openNDS URL-encodes every value: a block an attacker altered decrypts to random bytes.
    if not _PRINTABLE.match(plain):
        raise SignatureError("openNDS payload decrypts to garbage: altered ciphertext")
    return plain


def ciphertext_digest(fas: str) -> str:
    """Return sha256_hex of a level 2/3 payload's ciphertext bytes (the replay nonce)."""
    try:
        return hashlib.sha256(base64.b64decode(base64.b64decode(fas, validate=True), validate=True)).hexdigest()
    except (binascii.Error, ValueError):
        return ""


def same_gateway(sent: str, registered: str) -> bool:
    """True if the gateway name a router sent is the registered one, node suffixes aside."""
    sent_base, sent_node = split_node_suffix(sent)
    reg_base, reg_node = split_node_suffix(registered)
    return sent_base.lower() == reg_base.lower() and (not sent_node or not reg_node or sent_node.lower() == reg_node.lower())


def split_node_suffix(name: str) -> tuple[str, str]:
    """Split ``"hs-1 Node:e4956e4d641c"`` into ``("hs-1", "e4956e4d641c")``; ``(name, "")`` without one."""
    match = _NODE_SUFFIX.match(name.strip())
    return (match["base"], match["node"]) if match else (name.strip(), "")


def encrypt_payload(plain: str, iv: str, faskey: str) -> str:
    """Encrypt like the router does (tests and lab tools build level 2/3 arrivals with it)."""
    padder = padding.PKCS7(128).padder()
    encryptor = _aes(faskey, iv).encryptor()
    body = encryptor.update(padder.update(plain.encode()) + padder.finalize()) + encryptor.finalize()
    return base64.b64encode(base64.b64encode(body)).decode()


def rhid(hid: str, faskey: str) -> str:
    """Return the token the router accepts for *hid*: sha256_hex(hid ‖ faskey)."""
    return hashlib.sha256((hid + faskey).encode()).hexdigest()


def gateway_hash(encoded_name: str) -> str:
    """Return authmon's ``gatewayhash``: sha256_hex of the still URL-encoded gateway name."""
    return hashlib.sha256(encoded_name.strip().encode()).hexdigest()


def parse_payload(text: str) -> dict[str, str]:
    """Split ``name=value, name=value`` into a dict (values stay URL-encoded)."""
    pairs = {}
    for part in text.split(QUERY_SEPARATOR):
        name, sep, value = part.partition("=")
        if sep and name.strip():
            pairs[name.strip()] = value.strip()
    return pairs


def auth_entry(token: str, settings: SiteSettings) -> str:
    """Return the authmon auth-list entry: rhid, minutes, kbit/s up/down, kB up/down, custom."""
    quota_kb = max(settings.quota_mb, 0) * 1000  # openNDS counts 1000 kB per MB
    return " ".join(str(v) for v in (
        token, max(settings.minutes, 0), max(settings.upload_kbps, 0), max(settings.download_kbps, 0),
        quota_kb, quota_kb, AUTHMON_CUSTOM))


def _node(gateway_id: str) -> dict[str, str]:
    node = split_node_suffix(gateway_id)[1]
    return {"node": node} if node else {}


def _level(settings: SiteSettings | None) -> str:
    return (settings.options.get(LEVEL_OPTION, "") if settings else "").strip()


class OpenndsHook:
    """Adapter for openNDS FAS at every security level."""

    vendor: ClassVar[str] = "opennds"
    server_side: ClassVar[bool] = False
    #: Levels 2/3 are encrypted under the faskey: parse again with the site's settings.
    signed: ClassVar[bool] = True
    supports_deauth: ClassVar[bool] = False

    def parse_arrival(self, args: Mapping[str, str], *, settings: SiteSettings | None = None) -> Arrival:
        """Decode (and at levels 2/3 decrypt) what the router sent."""
        if args.get("fas"):
            fas = args["fas"].replace(" ", "+")  # a form decoder may have turned '+' into ' '
            if args.get("iv"):
                fmt = "2"
                iv = args["iv"]
                if not _IV.match(iv):
                    raise SignatureError("openNDS iv must be 16 characters")
                payload = self._decrypt(args, fas, iv, settings)
            else:
                fmt, iv = "1", ""
                try:
                    payload = parse_payload(base64.b64decode(fas, validate=True).decode("utf-8"))
                except (binascii.Error, ValueError, UnicodeDecodeError):
                    raise ArrivalError("openNDS fas is not base64") from None
            arrival = self._from_payload(payload, fmt, iv)
        elif args.get("tok"):
            fmt = "0"
            arrival = self._from_clear(args)
        else:
            raise ArrivalError("openNDS sent neither fas nor tok")
        expected = _FORMAT.get(_level(settings))
        if expected and expected != fmt:
            raise SignatureError(f"openNDS arrival in level-{fmt} format, site expects level {_level(settings)}")
        return arrival

    def _decrypt(self, args: Mapping[str, str], fas: str, iv: str, settings: SiteSettings | None) -> dict[str, str]:
        # The kit's faspath names the site, so the portal can offer that site's own faskey
        # before it knows the (encrypted) gateway name; it only counts for that site's gateway.
        path_key, path_gateway = args.get(PATH_FASKEY, ""), args.get(PATH_GATEWAY, "")
        if path_key and path_gateway:
            try:
                payload = parse_payload(decrypt_payload(fas, iv, path_key))
            except SignatureError:
                payload = None
            if payload is not None:
                if not same_gateway(unquote(payload.get("gatewayname", "")), path_gateway):
                    raise SignatureError("openNDS payload names another gateway than its FAS path's site")
                return {**payload, "_ciphertext": ciphertext_digest(fas)}
        faskey = settings.secrets.get("faskey", "") if settings else ""
        if not faskey:
            raise SignatureError("encrypted openNDS arrival but no faskey is configured")
        payload = parse_payload(decrypt_payload(fas, iv, faskey))
        return {**payload, "_ciphertext": ciphertext_digest(fas)}

    def _from_payload(self, payload: Mapping[str, str], fmt: str, iv: str) -> Arrival:
        hid = payload.get("hid", "")
        if not _HEX64.match(hid):
            # A garbled decryption rarely yields a well-formed hid: treat it as forged.
            raise SignatureError("openNDS payload has no valid hid")
        address = payload.get("gatewayaddress", "")
        if not _HOSTPORT.match(address):
            raise ArrivalError("openNDS payload has no usable gatewayaddress")
        authdir = payload.get("authdir", "") or "opennds_auth"
        if not _AUTHDIR.match(authdir):
            raise ArrivalError("malformed openNDS authdir")
        encoded_name = payload.get("gatewayname", "")
        gateway_id = unquote(encoded_name).strip()[:128]
        extra = {"format": fmt, "hid": hid, "gatewayaddress": address, "authdir": authdir,
                 "gatewayhash": gateway_hash(encoded_name), **_node(gateway_id)}
        if iv:
            extra.update(iv=iv, ciphertext=payload.get("_ciphertext", ""))
        return Arrival(
            vendor=self.vendor,
            gateway_id=gateway_id,
            client_mac=normalize_mac(payload.get("clientmac")),
            client_ip=payload.get("clientip", "").strip()[:45],
            original_url=safe_http_url(unquote(payload.get("originurl", ""))),
            extra=extra,
        )

    def _from_clear(self, args: Mapping[str, str]) -> Arrival:
        token = args.get("tok", "")
        if not _TOKEN.match(token):
            raise ArrivalError("malformed openNDS tok")
        action = safe_http_url(args.get("authaction"))
        if not action:
            raise ArrivalError("openNDS level 0 sent no usable authaction")
        parts = urlsplit(action)
        gateway_id = (args.get("gatewayname") or "").strip()[:128]
        return Arrival(
            vendor=self.vendor,
            gateway_id=gateway_id,
            client_ip=(args.get("clientip") or "").strip()[:45],
            original_url=safe_http_url(args.get("redir")),
            extra={"format": "0", "tok": token, "auth_url": f"{parts.scheme}://{parts.netloc}{parts.path}",
                   **_node(gateway_id)},
        )

    def replay_key(self, arrival: Arrival) -> str:
        """Return the per-redirect nonce of a verified arrival: its level 2/3 ciphertext (not the iv)."""
        if arrival.extra.get("iv"):
            return arrival.extra.get("ciphertext", "") or arrival.extra["iv"]
        return ""

    def authorize(self, arrival: Arrival, settings: SiteSettings) -> Grant:
        """Send the browser to the router's auth URL, or hand an authmon entry to the portal."""
        extra = arrival.extra
        redir = arrival.original_url
        if extra.get("format") == "0":
            query = {"tok": extra["tok"], **({"redir": redir} if redir else {})}
            return Grant(kind="redirect", url=f"{pinned(extra['auth_url'], settings)}?{urlencode(query)}")
        faskey = settings.secrets.get("faskey", "")
        if not faskey:
            raise ArrivalError("no faskey configured for this openNDS site")
        token = rhid(extra["hid"], faskey)
        if _level(settings) in ("3", "4") or settings.login_mode == "authmon":
            return Grant(kind="gateway", url=redir, fields={
                "protocol": "authmon", "queue": extra["gatewayhash"], "id": token,
                "entry": auth_entry(token, settings)})
        query = {"tok": token, **({"redir": redir} if redir else {})}
        address = pinned(extra["gatewayaddress"], settings)
        return Grant(kind="redirect", url=f"http://{address}/{extra['authdir']}/?{urlencode(query)}")
