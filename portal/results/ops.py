"""Operations: Prometheus metrics (multiprocess-safe under gunicorn), request ids, JSON logs.

Metrics kept in each process (counters and histograms): under gunicorn set
``PROMETHEUS_MULTIPROC_DIR`` (deploy/gunicorn.conf.py empties it at start and marks
exited workers dead), and ``/metrics`` aggregates every worker's files. Read at scrape
time instead, so every process reports the same: queue depth and age (delivery), spool
size and age (this machine), sites by state (the heartbeat index, three ZCOUNTs).

- ``portal_http_requests_total{endpoint,method,status}``
- ``portal_http_request_duration_seconds{endpoint}`` (histogram)
- ``portal_outcomes_total{outcome}``: landing, forged, bad_arrival, complaint_receipt,
  complaint_invalid, form_expired, grant_ok, grant_refused, grant_failed, session_expired,
  rate_limited, error
- ``portal_grant_failures_total{vendor,reason}`` (reason: refused, failed)
- ``portal_spool_bytes``, ``portal_spool_oldest_age_seconds``
- ``portal_fleet_sites{state}`` (online, stale, offline)
- ``portal_delivery_queue_depth{state}``, ``portal_delivery_oldest_age_seconds`` (portal.delivery.metrics)
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import re
import secrets
import threading
import time

from flask import Flask, current_app, g, has_request_context, request
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from hotspot_hooks import HOOKS

from .. import events
from ..heartbeat import INDEX
from ..redis import DOWN_ERRORS, raw_client

log = logging.getLogger(__name__)

REQUESTS = Counter("portal_http_requests", "HTTP requests answered", ["endpoint", "method", "status"])
LATENCY = Histogram("portal_http_request_duration_seconds", "Time to answer a request", ["endpoint"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
OUTCOMES = Counter("portal_outcomes", "What residents got from the portal", ["outcome"])
GRANT_FAILURES = Counter("portal_grant_failures", "Internet grants that did not happen", ["vendor", "reason"])
OUTCOME_NAMES = ("landing", "forged", "bad_arrival", "complaint_receipt", "complaint_invalid", "form_expired",
                 "grant_ok", "grant_refused", "grant_failed", "session_expired", "rate_limited", "error")
for _name in OUTCOME_NAMES:  # every series exists from the start, so rules and dashboards see 0, not nothing
    OUTCOMES.labels(_name)
for _vendor in HOOKS:
    for _reason in ("refused", "failed"):
        GRANT_FAILURES.labels(_vendor, _reason)

_BY_STATUS = {
    "splash.arrival": {200: "landing", 403: "forged", 400: "bad_arrival"},
    "complaints.submit": {200: "complaint_receipt", 422: "complaint_invalid", 400: "form_expired"},
    "splash.connect": {200: "grant_ok", 303: "grant_ok", 403: "grant_refused", 502: "grant_failed"},
}
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def outcome_of(endpoint: str, status: int) -> str | None:
    """The resident-visible outcome of a response, or None for requests that are not one."""
    if status == 410:
        return "session_expired"
    if status == 429:
        return "rate_limited"
    if status >= 500 and not (endpoint == "splash.connect" and status == 502):
        return "error"
    return _BY_STATUS.get(endpoint, {}).get(status)


def _count_grant_failure(reason: str) -> None:
    from .. import sessions

    vendor, kab = "unknown", ""
    try:
        session = sessions.load((request.view_args or {}).get("token", ""), request.values.get("fb", ""))
        if session is not None:
            site = current_app.extensions["portal_sites"].get(None, session.site_id)
            vendor = (site.gateway_vendor if site else session.arrival.vendor) or "unknown"
            kab = site.kabupaten_kode.replace(".", "") if site else ""
        events.count_grant(raw_client(), current_app.config["PROVINCE"], vendor, reason, kab=kab)
    except DOWN_ERRORS:
        pass  # the metric below still counts it; the fleet page's rate misses one
    GRANT_FAILURES.labels(vendor, reason).inc()


def request_id(environ: dict) -> str:
    """The request's id: the proxy's ``X-Request-Id`` if it looks like one, else a new one."""
    given = environ.get("HTTP_X_REQUEST_ID", "")  # the environ, not a Headers view: every request
    return given if _REQUEST_ID.match(given) else secrets.token_hex(8)


class RequestTally:
    """This process's request counts and latencies, added to the Prometheus values about once a second.

    Under gunicorn every Prometheus update takes a lock and writes a memory-mapped file; three per
    request were ~50 µs of each resident page (issue 14). Requests are tallied here instead and a
    daemon thread adds the sums (and the latencies to the histogram) every ``FLUSH_SECONDS``; the
    process's own scrape adds them first, so another worker's counts lag by at most that much.
    """

    FLUSH_SECONDS = 1.0

    def __init__(self):
        self._lock = threading.Lock()
        self._requests: dict[tuple, int] = {}
        self._latencies: dict[str, list[float]] = {}
        self._outcomes: dict[str, int] = {}
        self._pid = 0  # the process whose flusher runs (a forked worker starts its own)

    def add(self, endpoint: str, method: str, status: str, seconds: float | None, outcome: str | None) -> None:
        """Count one answered request."""
        with self._lock:
            key = (endpoint, method, status)
            self._requests[key] = self._requests.get(key, 0) + 1
            if seconds is not None:
                self._latencies.setdefault(endpoint, []).append(seconds)
            if outcome:
                self._outcomes[outcome] = self._outcomes.get(outcome, 0) + 1
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="portal-metrics", daemon=True).start()

    def flush(self) -> None:
        """Add what was tallied since the last flush to the Prometheus values."""
        with self._lock:
            requests_, latencies, outcomes = self._requests, self._latencies, self._outcomes
            self._requests, self._latencies, self._outcomes = {}, {}, {}
        for labels, count in requests_.items():
            REQUESTS.labels(*labels).inc(count)
        for endpoint, values in latencies.items():
            child = LATENCY.labels(endpoint)
            for value in values:
                child.observe(value)
        for outcome, count in outcomes.items():
            OUTCOMES.labels(outcome).inc(count)

    def _run(self) -> None:
        while True:
            time.sleep(self.FLUSH_SECONDS)
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - a metrics hiccup must not end the flusher for good
                log.exception("request metrics flush failed")


TALLY = RequestTally()
atexit.register(TALLY.flush)  # a worker that exits (max_requests, a restart) keeps its last second


class ScrapeTimeCollector:
    """Spool and fleet gauges, read when Prometheus scrapes."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self):
        stats = self.app.extensions["portal_spool"].stats()
        yield GaugeMetricFamily("portal_spool_bytes", "Bytes waiting in this machine's spool", value=stats["bytes"])
        yield GaugeMetricFamily("portal_spool_oldest_age_seconds", "Age of the oldest spooled record",
                                value=stats["oldest_age_seconds"] or 0.0)
        config = self.app.config
        now = time.time()
        stale, offline = float(config["FLEET_STALE_SECONDS"]), float(config["FLEET_OFFLINE_SECONDS"])
        client = raw_client()
        index = INDEX.format(config["PROVINCE"])
        with client.pipeline(transaction=False) as pipe:
            pipe.zcount(index, now - stale, "+inf")
            pipe.zcount(index, now - offline, f"({now - stale}")
            online, stale_count = pipe.execute()
        total = len(self.app.extensions["portal_sites"].all(client))
        sites = GaugeMetricFamily("portal_fleet_sites", "Registered sites by heartbeat state", labels=["state"])
        sites.add_metric(["online"], online)
        sites.add_metric(["stale"], stale_count)
        sites.add_metric(["offline"], max(0, total - online - stale_count))
        yield sites


class ProcessMetrics:
    """This process's counters, or every gunicorn worker's when PROMETHEUS_MULTIPROC_DIR is set."""

    def collect(self):
        TALLY.flush()  # this process's latest requests; the other workers' flushers add theirs
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import CollectorRegistry, multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            yield from registry.collect()
        else:
            for metric in REGISTRY.collect():
                if metric.name.startswith("portal_"):
                    yield metric


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the request id (no addresses)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
                 "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if has_request_context():
            entry["request_id"] = g.get("request_id", "")
            entry["endpoint"] = request.endpoint or ""
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def init_app(app: Flask) -> None:
    """Time and count every request, give it an id, log JSON, and add the gauges to /metrics."""
    app.extensions.setdefault("portal_metrics_collectors", []).extend([ProcessMetrics(), ScrapeTimeCollector(app)])
    if app.config["LOG_FORMAT"] == "json":
        from flask.logging import default_handler

        default_handler.setFormatter(JSONFormatter())

    @app.before_request
    def start_request():
        g.request_id = request_id(request.environ)
        g.request_started = time.perf_counter()

    @app.after_request
    def count_request(response):
        endpoint = request.endpoint or "unmatched"
        status = response.status_code
        # Label values from the client are bounded: an invented method must not mint new series.
        method = request.method if request.method in _METHODS else "other"
        started = g.get("request_started")
        outcome = outcome_of(endpoint, status)
        TALLY.add(endpoint, method, str(status), None if started is None else time.perf_counter() - started, outcome)
        if outcome in ("grant_refused", "grant_failed"):
            _count_grant_failure(outcome.removeprefix("grant_"))
        response.headers.setdefault("X-Request-Id", g.get("request_id", ""))
        return response
