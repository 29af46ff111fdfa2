"""Queue depth and oldest age: /metrics behind a bearer token, and the CLI."""
from __future__ import annotations

from .conftest import drain, submit


def test_metrics_need_the_token(app, client):
    assert client.get("/metrics").status_code == 404  # off without PORTAL_METRICS_TOKEN
    app.config["METRICS_TOKEN"] = "scrape-me"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_metrics_report_queue_depth_and_age(app, client, resident, receiver, runner):
    app.config["METRICS_TOKEN"] = "scrape-me"
    submit(resident, count=3)
    text = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).get_data(as_text=True)
    assert 'portal_delivery_queue_depth{state="queued"} 3.0' in text
    assert "portal_delivery_oldest_age_seconds" in text
    receiver.script("reject400")
    drain(app)
    text = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).get_data(as_text=True)
    assert 'portal_delivery_queue_depth{state="queued"} 0.0' in text
    assert 'portal_delivery_queue_depth{state="dead"} 1.0' in text
    assert "portal_delivery_oldest_age_seconds 0.0" in text
    assert "queued=0  in_flight=0  scheduled=0  dead=1" in runner.invoke(args=["delivery", "stats"]).output
