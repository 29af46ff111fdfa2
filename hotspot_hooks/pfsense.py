"""pfSense (and OPNsense-style) captive portal zones, gateways.md §7.

pfSense has no external-portal protocol: the operator uploads a portal page that
auto-submits its substitutions to us (see docs), with these field names:
``gateway_id`` (the site's id, typed in by the operator), ``portal_action``
(``$PORTAL_ACTION$``), ``zone`` (``$PORTAL_ZONE$``), ``redirurl`` (``$PORTAL_REDIRURL$``),
``client_mac`` (``$CLIENT_MAC$``), ``client_ip`` (``$CLIENT_IP$``). Nothing is signed.

pfSense identifies the client by the POST's source address, so the browser posts
``accept``, ``zone``, ``redirurl`` and the credentials to ``portal_action``:
``auth_user``/``auth_pass`` when the site has a username, ``auth_voucher`` in
``login_mode="voucher"``, none for a zone without authentication. pfSense takes
them in clear, so they are only the site's own secrets (never the fleet password),
and ``portal_action`` must be on one of the site's ``router_hosts``
(:mod:`hotspot_hooks.guards`).
"""
from __future__ import annotations

import re
from typing import ClassVar, Mapping

from .base import Arrival, ArrivalError, Grant, SiteSettings
from .guards import GrantRefusedError, pinned
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
        action = pinned(arrival.extra["portal_action"], settings)
        fields = {"zone": arrival.extra["zone"], "redirurl": arrival.original_url, "accept": "Continue"}
        if settings.login_mode == "voucher":
            fields["auth_voucher"] = settings.secrets.get("voucher", "")
        elif settings.username:
            # The resident's page shows it: only a password set for this site, never the fleet's.
            password = settings.secrets.get("password", "")
            if not password:
                raise GrantRefusedError("pfSense zone with a username but no site password secret", reason="clear_password")
            fields["auth_user"] = settings.username
            fields["auth_pass"] = password
        return Grant(kind="form", url=action, method="post", fields=fields)
