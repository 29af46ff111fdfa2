"""RFC 8908 Captive Portal API and the health endpoints."""
from __future__ import annotations

CAPTIVE = "application/captive+json"


def test_captive_api_before_and_after_grant(resident):
    resident.arrive()
    before = resident.client.get(f"/api/captive/{resident.token}", headers={"Accept": CAPTIVE})
    assert before.mimetype == CAPTIVE
    assert before.json["captive"] is True
    assert before.json["user-portal-url"] == f"https://portal.test/p/{resident.token}"
    resident.connect()
    after = resident.client.get(f"/api/captive?session={resident.token}", headers={"Accept": CAPTIVE})
    assert after.json["captive"] is False
    assert 0 < after.json["seconds-remaining"] <= 120 * 60


def test_captive_api_without_session_points_at_the_portal(client):
    response = client.get("/api/captive")
    assert response.mimetype == CAPTIVE
    assert response.json == {"captive": True, "user-portal-url": "https://portal.test/",
                             "venue-info-url": "https://portal.test/status"}
    assert response.headers["Cache-Control"] == "private, no-store"


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz").json
    assert ready["redis"] == "up" and ready["status"] == "ready"
