"""Queue depth and oldest-message age for monitoring: Prometheus ``/metrics`` and the CLI.

``/metrics`` answers only a ``Authorization: Bearer <PORTAL_METRICS_TOKEN>``
request and is off (404) while the token is unset: it is not for residents.
"""
from __future__ import annotations

import hmac
import time

import redis
from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from ..redis import DOWN_ERRORS, raw_client
from . import state

bp = Blueprint("delivery_metrics", __name__)


def snapshot(client: redis.Redis, province: str, *, now: float | None = None) -> dict:
    """Counts of the delivery queue: queued, in flight, scheduled for retry, dead, oldest age."""
    now = time.time() if now is None else now
    keys = state.keys(province)
    with client.pipeline(transaction=False) as pipe:
        pipe.xlen(keys["stream"])
        pipe.xrange(keys["stream"], count=1)
        pipe.zcard(keys["retry"])
        pipe.xlen(keys["dead"])
        pipe.zrange(keys["undelivered"], 0, 0, withscores=True)
        queued, first, scheduled, dead, oldest_seen = pipe.execute()
    try:
        in_flight = client.xpending(keys["stream"], state.GROUP)["pending"]
    except redis.ResponseError:  # no group yet: no worker ever ran
        in_flight = 0
    starts = [int(first[0][0].split(b"-")[0]) / 1000] if first else []
    starts += [score for _, score in oldest_seen]
    return {
        "queued": queued, "in_flight": in_flight, "scheduled": scheduled, "dead": dead,
        "oldest_age_seconds": max(0.0, now - min(starts)) if starts else 0.0,
    }


class DeliveryCollector:
    """Reads the snapshot at scrape time, so every web process reports the same numbers."""

    def __init__(self, client: redis.Redis, province: str):
        self.client, self.province = client, province

    def collect(self):
        snap = snapshot(self.client, self.province)
        depth = GaugeMetricFamily("portal_delivery_queue_depth", "Complaints not yet delivered, by state",
                                  labels=["state"])
        for name in ("queued", "in_flight", "scheduled", "dead"):
            depth.add_metric([name], snap[name])
        yield depth
        yield GaugeMetricFamily("portal_delivery_oldest_age_seconds",
                                "Age of the oldest complaint not yet delivered", value=snap["oldest_age_seconds"])


@bp.get("/metrics")
def metrics():
    """Prometheus exposition of the delivery metrics, for a bearer token only."""
    token = current_app.config.get("METRICS_TOKEN", "")
    if not token:
        return Response("not found\n", status=404, mimetype="text/plain")
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return Response("unauthorized\n", status=401, mimetype="text/plain",
                        headers={"WWW-Authenticate": "Bearer"})
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DeliveryCollector(raw_client(), current_app.config["PROVINCE"]))
    for collector in current_app.extensions.get("portal_metrics_collectors", ()):  # requests, spool, fleet (issue 13)
        registry.register(collector)
    try:
        output = generate_latest(registry)
    except DOWN_ERRORS:
        return Response("redis unavailable\n", status=503, mimetype="text/plain")
    return Response(output, mimetype=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
