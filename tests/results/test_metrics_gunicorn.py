"""Every metric with its labels under two gunicorn workers; the deploy rules and dashboard use only those."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import requests
import yaml

from portal.sites import import_sites, parse_csv
from tests.conftest import MIKROTIK_ARRIVAL, SITES_CSV, client_for_url
from tests.servers import Gunicorn, portal_env

DEPLOY = Path(__file__).resolve().parent.parent.parent / "deploy"
TOKEN = "scrape-token"
SAMPLE = re.compile(r"^(portal_\w+?)(\{[^}]*\})? (\S+)$", re.M)


@pytest.fixture(scope="module")
def served(redis_server, tmp_path_factory):
    client = client_for_url(redis_server.url)  # a cluster in the cluster pass
    client.flushall()
    import_sites(client, parse_csv(SITES_CSV))
    var = tmp_path_factory.mktemp("metrics-var")
    server = Gunicorn(portal_env(redis_server.url, var, MIN_FILL_SECONDS=0, METRICS_TOKEN=TOKEN), workers=2).start()
    # Enough traffic, on fresh connections, that both workers answer some of it.
    for _ in range(12):
        landing = requests.post(f"{server.url}/hotspot/mikrotik", data=MIKROTIK_ARRIVAL, timeout=10)
        token = re.search(r"/p/([^/]+)/connect", landing.text).group(1)
        assert requests.post(f"{server.url}/p/{token}/connect", allow_redirects=False, timeout=10).status_code == 303
    assert requests.get(f"{server.url}/p/not-a-session", timeout=10).status_code == 410
    requests.request("BREW", f"{server.url}/p/not-a-session", timeout=10)  # an invented method
    yield server, var
    server.stop()
    client.close()


def scrape(server) -> str:
    response = requests.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.text


def samples(text: str) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for name, labels, _value in SAMPLE.findall(text):
        found.setdefault(name, []).append(dict(re.findall(r'(\w+)="([^"]*)"', labels or "")))
    return found


def value(text: str, name: str, **labels) -> float:
    for line_name, raw_labels, raw in SAMPLE.findall(text):
        if line_name == name and all(f'{k}="{v}"' in (raw_labels or "") for k, v in labels.items()):
            return float(raw)
    raise AssertionError(f"{name} {labels} missing")


def outcomes(text: str) -> list[float] | None:
    """The landing, grant_ok and session_expired counts of a scrape, or None while one is missing."""
    try:
        return [value(text, "portal_outcomes_total", outcome=o) for o in ("landing", "grant_ok", "session_expired")]
    except AssertionError:  # an outcome no worker has added yet
        return None


def test_every_metric_with_its_labels_from_both_workers(served):
    server, var = served
    deadline = time.monotonic() + 20  # on a loaded machine the second worker may still be booting
    while True:
        workers = {p.name.split("_")[-1] for p in (var / "prometheus").glob("counter_*.db")}
        if len(workers) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(workers) == 2, workers  # each worker keeps its counters in its own file
    # Each worker adds its tally to the shared values once a second (RequestTally): within a few
    # seconds, whichever worker answers the scrape, the sums are the same.
    deadline = time.monotonic() + 10
    while True:
        texts = [scrape(server) for _ in range(6)]
        # The invented method was the last request: its worker's tally may come a second later,
        # and so may the other worker's, which served the last connect or the 410 perhaps.
        if all(outcomes(text) == [12, 12, 1]
               and any(s["method"] == "other" for s in samples(text).get("portal_http_requests_total", []))
               for text in texts):
            break
        assert time.monotonic() < deadline, [outcomes(text) for text in texts]
        time.sleep(0.3)
    first = texts[0]
    found = samples(first)
    expected = {
        "portal_http_requests_total": {"endpoint", "method", "status"},
        "portal_http_request_duration_seconds_bucket": {"endpoint", "le"},
        "portal_http_request_duration_seconds_count": {"endpoint"},
        "portal_outcomes_total": {"outcome"},
        "portal_grant_failures_total": {"vendor", "reason"},
        "portal_delivery_queue_depth": {"state"},
        "portal_delivery_oldest_age_seconds": set(),
        "portal_spool_bytes": set(),
        "portal_spool_oldest_age_seconds": set(),
        "portal_fleet_sites": {"state"},
    }
    for name, labels in expected.items():
        assert name in found, name
        assert all(set(s) == labels for s in found[name]), (name, found[name][:2])
    assert value(first, "portal_outcomes_total", outcome="landing") == 12
    assert value(first, "portal_outcomes_total", outcome="grant_ok") == 12
    assert value(first, "portal_outcomes_total", outcome="session_expired") == 1
    assert value(first, "portal_http_requests_total", endpoint="splash.connect", status="303") == 12
    assert value(first, "portal_grant_failures_total", vendor="mikrotik", reason="failed") == 0
    assert not any(s["method"] == "BREW" for s in found["portal_http_requests_total"])
    assert any(s["method"] == "other" for s in found["portal_http_requests_total"])
    assert {s["state"] for s in found["portal_fleet_sites"]} == {"online", "stale", "offline"}
    assert value(first, "portal_fleet_sites", state="offline") == 2  # no heartbeats in this test
    for text in texts[1:]:
        assert value(text, "portal_outcomes_total", outcome="landing") == 12


def test_log_lines_are_json_with_request_ids_and_no_addresses(served):
    server, _ = served
    answer = requests.post(f"{server.url}/hotspot/mikrotik", data=dict(MIKROTIK_ARRIVAL, identity="hs-nowhere"),
                           headers={"X-Request-Id": "req-abc-12345"}, timeout=10)
    assert answer.headers["X-Request-Id"] == "req-abc-12345"
    assert re.fullmatch(r"[0-9a-f]{16}", requests.get(f"{server.url}/healthz", timeout=10).headers["X-Request-Id"])
    time.sleep(0.3)
    lines = [json.loads(line) for line in server.log_text().splitlines() if line.startswith("{")]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines), server.log_text()
    warned = [line for line in lines if "unregistered mikrotik gateway" in line["message"]]
    assert warned and warned[0]["request_id"] == "req-abc-12345" and warned[0]["endpoint"] == "splash.arrival"
    text = server.log_text().lower()
    for leak in ("70:8a:09:65:4d:ec", "708a09654dec", "10.5.50.253"):
        assert leak not in text


def test_rules_and_dashboard_use_only_metrics_that_exist(served):
    server, _ = served
    scraped = set(samples(scrape(server)))
    rules = yaml.safe_load((DEPLOY / "prometheus" / "portal-alerts.yml").read_text(encoding="utf-8"))
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert all(rule.get("alert") and rule.get("annotations") for g in rules["groups"] for rule in g["rules"])
    dashboard = json.loads((DEPLOY / "grafana" / "portal-dashboard.json").read_text(encoding="utf-8"))
    exprs += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\bportal_\w+", expr)}
    assert used and used <= scraped, used - scraped
