"""With Redis down, residents still get a page (the last published copy or the built-in
campaign), and staff pages say the studio is unavailable instead of failing with a 500."""
from __future__ import annotations

import os

import redis as redis_py

from portal import create_app
from portal.embedded_redis import EmbeddedRedis
from portal.sites import import_sites, parse_csv
from tests.conftest import SITES_CSV, Resident, make_config
from tests.studio_helpers import StaffClient, campaign_form, make_staff


def test_redis_down_keeps_the_landing_and_explains_the_studio(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis", binary=os.environ.get("PORTAL_TEST_REDIS_BINARY")).start()
    try:
        app = create_app(make_config(server.url, tmp_path / "var"))
        client = redis_py.Redis.from_url(server.url)
        import_sites(client, parse_csv(SITES_CSV))
        make_staff(app, client, "editor1", "editor", "51.01")
        make_staff(app, client, "reviewer1", "reviewer")
        editor, reviewer = StaffClient(app, "editor1"), StaffClient(app, "reviewer1")
        editor.post("/studio/campaigns/new", campaign_form(cap="5"))
        editor.post("/studio/campaigns/festival-2027/submit")
        reviewer.post("/studio/campaigns/festival-2027/approve")
        resident = Resident(app.test_client())
        assert "Festival Makepung 2027" in resident.arrive().get_data(as_text=True)
        server.stop()
        page = resident.arrive(mac="70:8A:09:65:4D:11")
        assert page.status_code == 200 and resident.token.startswith("x.")
        assert "Festival Makepung 2027" in page.get_data(as_text=True), "the last loaded copy keeps serving"
        assert editor.get("/studio/campaigns").headers["Location"].startswith("/studio/login")
        down = editor.post("/studio/login", {"username": "editor1", "password": "whatever it is"})
        assert down.status_code == 503 and "basis data" in down.text
    finally:
        server.stop()
