"""Arrival paths that a gateway vendor imposes, as thin aliases of ``/hotspot/<vendor>``."""
from __future__ import annotations

from flask import Blueprint, request

from . import splash

bp = Blueprint("gateway_routes", __name__)


@bp.route("/guest/s/<unifi_site>/", methods=["GET", "POST"])
def unifi_guest(unifi_site: str):
    """UniFi always sends guests to ``/guest/s/<site>/``; the site name is needed to grant."""
    params = request.values.to_dict()
    params["site"] = unifi_site
    return splash.arrive("unifi", params)
