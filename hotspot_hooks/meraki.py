"""Cisco Meraki click-through external splash (EXCAP), gateways.md §5.

The AP redirects to our splash URL with ``base_grant_url``, ``user_continue_url``,
``node_mac``, ``client_mac`` and ``client_ip``; nothing is signed. Access is granted by
the browser: ``GET <base_grant_url>?continue_url=<url>&duration=<seconds>``.

``base_grant_url`` comes from the request, so it is only accepted on Meraki's
``network-auth.com`` hosts: otherwise a crafted link would make the portal an open
redirect. The site's gateway id is the AP's MAC (``node_mac``).
"""
from __future__ import annotations

from typing import ClassVar, Mapping
from urllib.parse import urlencode, urlsplit

from .base import Arrival, ArrivalError, Grant, SiteSettings
from .guards import GrantRefusedError
from .urls import normalize_mac, safe_http_url

GRANT_DOMAIN = "network-auth.com"


def grant_url(value: str | None) -> str:
    """Return *value* if it is a Meraki grant URL on ``*.network-auth.com``, else ``""``."""
    url = safe_http_url(value)
    host = (urlsplit(url).hostname or "").lower() if url else ""
    return url if host == GRANT_DOMAIN or host.endswith("." + GRANT_DOMAIN) else ""


class MerakiHook:
    """Adapter for Meraki MR/Go click-through splash pages."""

    vendor: ClassVar[str] = "meraki"
    server_side: ClassVar[bool] = False
    signed: ClassVar[bool] = False
    supports_deauth: ClassVar[bool] = False

    def parse_arrival(self, args: Mapping[str, str], *, settings: SiteSettings | None = None) -> Arrival:
        """Read the splash redirect's parameters."""
        base = grant_url(args.get("base_grant_url"))
        if not base:
            raise ArrivalError("Meraki sent no base_grant_url on network-auth.com")
        return Arrival(
            vendor=self.vendor,
            gateway_id=normalize_mac(args.get("node_mac")) or (args.get("node_mac") or "").strip()[:128],
            client_mac=normalize_mac(args.get("client_mac")),
            client_ip=(args.get("client_ip") or "").strip()[:45],
            original_url=safe_http_url(args.get("user_continue_url")),
            extra={"base_grant_url": base},
        )

    def authorize(self, arrival: Arrival, settings: SiteSettings) -> Grant:
        """Send the browser to Meraki's grant URL for ``settings.minutes``."""
        # Checked again here: a session's arrival is only as good as the code that stored it.
        base = grant_url(arrival.extra.get("base_grant_url"))
        if not base:
            raise GrantRefusedError("Meraki grant URL is not on network-auth.com", reason="router_host")
        # Public Meraki examples pass duration in seconds (gateways.md §13: unit unofficial).
        query = {"duration": str(max(settings.minutes, 1) * 60)}
        if arrival.original_url:
            query = {"continue_url": arrival.original_url, **query}
        joiner = "&" if urlsplit(base).query else "?"
        return Grant(kind="redirect", url=f"{base}{joiner}{urlencode(query)}")
