"""The audit stream and the staff-access seam that every staff page uses."""
from __future__ import annotations

import flask
import pytest

from portal import audit, staff_access
from portal.staff_access import Staff


def test_audit_entries_come_back_newest_first_and_filtered(redis):
    for n in range(5):
        audit.record(redis, "51", actor="ani", role="admin", action="campaign.edit", target=f"c{n}", at=100 + n)
    audit.record(redis, "51", actor="budi", role="auditor", action="audit.export", rows=5)
    everything = audit.entries(redis, "51")
    assert [e["actor"] for e in everything][:2] == ["budi", "ani"]
    assert [e["target"] for e in audit.entries(redis, "51", actor="ani")] == ["c4", "c3", "c2", "c1", "c0"]
    assert audit.entries(redis, "51", action="audit.export")[0]["details"] == {"rows": 5}
    assert len(audit.entries(redis, "51", limit=2)) == 2
    assert audit.entries(redis, "52") == []  # another province's stream
    assert "campaign.edit" in audit.to_csv(everything)


def test_audit_pages_past_the_first_batch(redis):
    for n in range(250):
        audit.record(redis, "51", actor="x", role="admin", action="a" if n % 2 else "b", target=str(n))
    assert len(audit.entries(redis, "51", action="a", limit=1000)) == 125


def test_covers_is_a_region_prefix():
    editor = Staff(id="1", username="e", role="editor", region="5171")
    assert editor.covers("5171010001") and editor.covers("51.71.01")
    assert not editor.covers("5103010001") and not editor.covers("") and not editor.covers(None)
    assert Staff(id="2", username="a", role="admin", region="51").covers("5103")
    dotted = Staff(id="3", username="d", role="editor", region="51.71")
    assert dotted.covers("5171010001") and dotted.covers("51.71.01") and not dotted.covers("51.03")


@pytest.fixture
def guarded_app():
    app = flask.Flask("t")
    who: dict = {}
    staff_access.set_loader(lambda: who.get("staff"))

    @app.get("/studio/x")
    @staff_access.require("admin", "auditor")
    def view():
        return "seen"

    yield app, who
    staff_access.set_loader(None)


def test_require_redirects_the_signed_out_and_refuses_other_roles(guarded_app):
    app, who = guarded_app
    client = app.test_client()
    response = client.get("/studio/x?q=1")
    assert response.status_code == 302 and response.location == "/studio/login?next=/studio/x?q=1"
    who["staff"] = Staff(id="1", username="r", role="reviewer", region="51")
    assert client.get("/studio/x").status_code == 403
    who["staff"] = Staff(id="2", username="a", role="auditor", region="51")
    assert client.get("/studio/x").get_data(as_text=True) == "seen"


def test_require_names_only_known_roles():
    with pytest.raises(ValueError):
        staff_access.require("superuser")
