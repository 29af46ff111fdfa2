"""pfSense (and OPNsense-style) captive portal zones, gateways.md §7.

pfSense has no external-portal protocol: the operator uploads a portal page that
auto-submits its substitutions to us (see docs), with these field names:
``gateway_id`` (the site's id, typed in by the operator), ``portal_action``
(``$PORTAL_ACTION$``), ``zone`` (``$PORTAL_ZONE$``), ``redirurl`` (``$PORTAL_REDIRURL$``),
``client_mac`` (``$CLIENT_MAC$``), ``client_ip`` (``$CLIENT_IP$``). Nothing is signed.

pfSense identifies the client by the POST's source address, so the browser posts
``accept``, ``zone``, ``redirurl`` and the credentials to ``portal_action``:
``auth_user``/``auth_pass`` when the site has a username, ``auth_voucher`` in
``login_mode="voucher"``, none for a zone without authentication.
"""
from __future__ import annotations

import re
from typing import ClassVar, Mapping

from .base import Arrival, ArrivalError, Grant, SiteSettings
from .urls import normalize_mac, safe_http_url

_ZONE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


class PfsenseHook:
    """Adapter for pfSense captive portal zones."""

    vendor: ClassVar[str] = "pfsense"
    server_side: ClassVar[bool] = False
    signed: ClassVar[bool] = False
    supports_deauth: ClassVar[bool] = False

    def parse_arrival(self, args: Mapping[str, str], *, settings: SiteSettings | None = None) -> Arrival:
        """Read the fields the uploaded portal page posted."""
        action = safe_http_url(args.get("portal_action"))
        if not action:
            raise ArrivalError("pfSense page sent no usable portal_action")
        zone = (args.get("zone") or "").strip()
        if not _ZONE.match(zone):
            raise ArrivalError("pfSense page sent no usable zone")
        return Arrival(
            vendor=self.vendor,
            gateway_id=(args.get("gateway_id") or "").strip()[:128],
            client_mac=normalize_mac(args.get("client_mac")),
            client_ip=(args.get("client_ip") or "").strip()[:45],
            original_url=safe_http_url(args.get("redirurl")),
            extra={"portal_action": action, "zone": zone},
        )

    def authorize(self, arrival: Arrival, settings: SiteSettings) -> Grant:
        """Return the form the browser posts to the zone's portal action."""
        fields = {"zone": arrival.extra["zone"], "redirurl": arrival.original_url, "accept": "Continue"}
        if settings.login_mode == "voucher":
            fields["auth_voucher"] = settings.secrets.get("voucher", "")
        elif settings.username:
            fields["auth_user"] = settings.username
            fields["auth_pass"] = settings.secrets.get("password", "")
        return Grant(kind="form", url=arrival.extra["portal_action"], method="post", fields=fields)
