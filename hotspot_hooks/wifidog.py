"""WiFiDog gateway protocol (wifidog-gateway; also Apfree WiFiDog), gateways.md §8.

1. The gateway redirects to ``<auth server>/login/?gw_address=&gw_port=&gw_id=&ip=&mac=&url=``.
2. After the landing page the browser goes to ``http://<gw_address>:<gw_port>/wifidog/auth?token=<t>``.
3. The gateway asks the portal ``/auth/?stage=login&token=<t>&mac=…`` and lets the client
   through on ``Auth: 1``; ``stage=counters`` repeats that question while the client is
   online, so answering ``Auth: 0`` ends the session.

The token is minted here and the grant is a ``"gateway"`` grant: the portal must record
which device (of the portal session) the token belongs to before the browser uses it,
and answers the gateway's ``/auth`` from that record. Nothing in the protocol is signed,
so ``gw_address`` must be one of the site's ``router_hosts`` (:mod:`hotspot_hooks.guards`).
"""
from __future__ import annotations

import re
import secrets
from typing import ClassVar, Mapping
from urllib.parse import urlencode

from .base import Arrival, ArrivalError, Grant, SiteSettings
from .guards import pinned
from .urls import normalize_mac, safe_http_url

DEFAULT_PORT = "2060"
_HOST = re.compile(r"^[A-Za-z0-9.\-]{1,253}$")
_PORT = re.compile(r"^[0-9]{1,5}$")
_GW_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")


def auth_reply(code: int) -> str:
    """Return the body the gateway parses: ``Auth: <n>`` (0 denied, 1 allowed, 6 failed)."""
    return f"Auth: {code}"


class WifidogHook:
    """Adapter for WiFiDog-protocol gateways."""

    vendor: ClassVar[str] = "wifidog"
    server_side: ClassVar[bool] = False
    signed: ClassVar[bool] = False
    supports_deauth: ClassVar[bool] = False

    def parse_arrival(self, args: Mapping[str, str], *, settings: SiteSettings | None = None) -> Arrival:
        """Read the login redirect's parameters."""
        address = (args.get("gw_address") or "").strip()
        port = (args.get("gw_port") or DEFAULT_PORT).strip()
        gw_id = (args.get("gw_id") or "").strip()
        if not _HOST.match(address) or not _PORT.match(port) or not 0 < int(port) < 65536:
            raise ArrivalError("WiFiDog sent no usable gw_address/gw_port")
        if not _GW_ID.match(gw_id):
            raise ArrivalError("WiFiDog sent no usable gw_id")
        return Arrival(
            vendor=self.vendor,
            gateway_id=gw_id,
            client_mac=normalize_mac(args.get("mac")),
            client_ip=(args.get("ip") or "").strip()[:45],
            original_url=safe_http_url(args.get("url")),
            extra={"gw_address": address, "gw_port": port},
        )

    def authorize(self, arrival: Arrival, settings: SiteSettings) -> Grant:
        """Mint a token and send the browser to the gateway's /wifidog/auth with it."""
        if not arrival.client_mac:
            raise ArrivalError("WiFiDog sent no client MAC: the token could not be bound to a device")
        address = pinned(arrival.extra["gw_address"], settings)
        token = secrets.token_urlsafe(24)
        url = f"http://{address}:{arrival.extra['gw_port']}/wifidog/auth?{urlencode({'token': token})}"
        return Grant(kind="gateway", url=url, fields={"protocol": "wifidog", "token": token})
