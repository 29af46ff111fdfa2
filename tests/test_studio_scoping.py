"""Role and region scoping of every studio route.

The table below must name every route under /studio (each method): a new route without
an entry fails ``test_every_studio_route_has_a_scoping_entry``. Each entry says which
roles may use it; every other role gets 403, a signed-out visitor goes to the sign-in
page, and on routes about one campaign an editor of another kabupaten gets 404 and
changes nothing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from portal.campaigns import store
from portal.staff_access import ROLES
from portal.tracking import normalize
from tests.conftest import Resident, tracking_number
from tests.studio_helpers import StaffClient, campaign_form, make_staff

ALL = ROLES
EDIT = ("admin", "editor")
REVIEW = ("admin", "reviewer")
OPERATE = ("admin", "operator")
READ_COMPLAINTS = ("admin", "editor", "reviewer")


@dataclass(frozen=True)
class Spec:
    roles: tuple = ALL
    public: bool = False
    scoped: bool = False      # about one campaign, site or complaint of Jembrana: other regions get 404
    path: str = ""            # the URL to call when the rule has variables
    data: tuple = ()


C = "/studio/campaigns/jembrana-fest"
TABLE = {
    ("/studio/login", "GET"): Spec(public=True),
    ("/studio/login", "POST"): Spec(public=True),
    ("/studio/static/<path:filename>", "GET"): Spec(public=True, path="/studio/static/studio.css"),
    ("/studio/", "GET"): Spec(),
    ("/studio/account/password", "GET"): Spec(),
    ("/studio/account/password", "POST"): Spec(),
    ("/studio/account", "GET"): Spec(),
    ("/studio/account", "POST"): Spec(),
    ("/studio/staff", "GET"): Spec(roles=("admin",)),
    ("/studio/staff", "POST"): Spec(roles=("admin",)),
    ("/studio/staff/<staff_id>/reset", "POST"): Spec(roles=("admin",), path="/studio/staff/{author}/reset"),
    ("/studio/campaigns", "GET"): Spec(),
    ("/studio/campaigns/new", "GET"): Spec(roles=EDIT),
    ("/studio/campaigns/new", "POST"): Spec(roles=EDIT),
    ("/studio/campaigns/<campaign_id>", "GET"): Spec(scoped=True, path=C),
    ("/studio/campaigns/<campaign_id>/edit", "GET"): Spec(roles=EDIT, scoped=True, path=C + "/edit"),
    ("/studio/campaigns/<campaign_id>/edit", "POST"): Spec(roles=EDIT, scoped=True, path=C + "/edit"),
    ("/studio/campaigns/<campaign_id>/submit", "POST"): Spec(roles=EDIT, scoped=True, path=C + "/submit"),
    ("/studio/campaigns/<campaign_id>/reject", "POST"): Spec(roles=REVIEW, scoped=True, path=C + "/reject"),
    ("/studio/campaigns/<campaign_id>/approve", "POST"): Spec(roles=REVIEW, scoped=True, path=C + "/approve"),
    ("/studio/campaigns/<campaign_id>/rollback", "POST"): Spec(roles=("admin", "editor", "reviewer"), scoped=True,
                                                              path=C + "/rollback", data=(("version", "1"),)),
    ("/studio/campaigns/<campaign_id>/preview", "GET"): Spec(scoped=True, path=C + "/preview"),
    ("/studio/campaigns/<campaign_id>/preview/frame", "GET"): Spec(scoped=True, path=C + "/preview/frame"),
    ("/studio/sites", "GET"): Spec(),
    ("/studio/sites/<site_id>", "GET"): Spec(scoped=True, path="/studio/sites/BALI-0001"),
    ("/studio/sites/<site_id>/settings", "POST"): Spec(roles=OPERATE, scoped=True, path="/studio/sites/BALI-0001/settings",
                                                      data=(("minutes", "45"),)),
    ("/studio/sites/<site_id>/secret", "POST"): Spec(roles=OPERATE, scoped=True, path="/studio/sites/BALI-0001/secret",
                                                    data=(("name", "heartbeat_key"), ("value", "k" * 20))),
    ("/studio/sites/<site_id>/kit", "GET"): Spec(roles=OPERATE, scoped=True, path="/studio/sites/BALI-0001/kit"),
    ("/studio/sites/import", "GET"): Spec(roles=OPERATE),
    ("/studio/sites/import", "POST"): Spec(roles=OPERATE),
    ("/studio/complaints", "GET"): Spec(roles=READ_COMPLAINTS),
    ("/studio/complaints.csv", "GET"): Spec(roles=REVIEW),
    ("/studio/complaints/<tracking>", "GET"): Spec(roles=READ_COMPLAINTS, scoped=True, path="/studio/complaints/{tracking}"),
    ("/studio/complaints/<tracking>/review", "POST"): Spec(roles=REVIEW, scoped=True,
                                                          path="/studio/complaints/{tracking}/review",
                                                          data=(("action", "reject"), ("reason", "spam"))),
    ("/studio/audit", "GET"): Spec(roles=("admin", "auditor")),
    ("/studio/audit.csv", "GET"): Spec(roles=("admin", "auditor")),
    # Results and fleet health (portal/results): figures are scoped by region in the queries
    # themselves (tests/test_results_pages.py checks another region's figures are refused).
    ("/studio/results/", "GET"): Spec(),
    ("/studio/results/export.<fmt>", "GET"): Spec(path="/studio/results/export.csv"),
    ("/studio/fleet/", "GET"): Spec(),
    ("/studio/fleet/sites.<fmt>", "GET"): Spec(path="/studio/fleet/sites.csv"),
    ("/studio/dsr/", "GET"): Spec(roles=("admin",)),
    ("/studio/dsr/", "POST"): Spec(roles=("admin",), data=(("action", "find"), ("tracking", "AAAA-AAAA-A"))),
    ("/studio/logout", "POST"): Spec(),  # last: it signs the caller out
}


def studio_routes(app) -> set[tuple[str, str]]:
    return {(rule.rule, method) for rule in app.url_map.iter_rules() if rule.rule.startswith("/studio")
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def test_every_studio_route_has_a_scoping_entry(app):
    routes = studio_routes(app)
    assert not routes - set(TABLE), f"add scoping entries for {sorted(routes - set(TABLE))}"
    assert not set(TABLE) - routes, f"entries for routes that no longer exist: {sorted(set(TABLE) - routes)}"
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/studio") and not TABLE[(rule.rule, sorted(rule.methods - {'HEAD', 'OPTIONS'})[0])].public:
            assert set(getattr(app.view_functions[rule.endpoint], "staff_roles", ())) == \
                set(TABLE[(rule.rule, sorted(rule.methods - {'HEAD', 'OPTIONS'})[0])].roles), rule.rule


def call(client, method: str, path: str, data=()):
    if method == "GET":
        return client.get(path)
    return client.post(path, dict(data))


def fixture_campaign(app, redis) -> dict:
    """A Jembrana campaign, published once and in review again, by an author outside the role table."""
    author = make_staff(app, redis, "penulis", "editor", "51.01")
    make_staff(app, redis, "pemeriksa", "reviewer", "51")
    writer = StaffClient(app, "penulis")
    assert writer.post("/studio/campaigns/new", campaign_form("jembrana-fest")).status_code == 302
    writer.post(C + "/submit")
    assert StaffClient(app, "pemeriksa").post(C + "/approve").status_code == 302
    writer.post(C + "/edit", campaign_form("jembrana-fest", name="Festival 2"))
    writer.post(C + "/submit")
    resident = Resident(app.test_client())
    resident.arrive()
    author["tracking"] = normalize(tracking_number(resident.submit(website="http://bot.example").text))  # held
    return author


def test_roles_and_regions_on_every_studio_route(app, redis):
    author = fixture_campaign(app, redis)
    people = {role: make_staff(app, redis, f"{role}1", role, "51.01" if role == "editor" else "51") for role in ROLES}
    make_staff(app, redis, "denpasar", "editor", "51.71")
    make_staff(app, redis, "denpasar-r", "reviewer", "51.71")
    make_staff(app, redis, "denpasar-o", "operator", "51.71")
    clients = {role: StaffClient(app, f"{role}1") for role in ROLES}
    outsiders = {"editor": StaffClient(app, "denpasar"), "reviewer": StaffClient(app, "denpasar-r"),
                 "operator": StaffClient(app, "denpasar-o")}
    anonymous = StaffClient.__new__(StaffClient)  # signed out, but with a valid CSRF token
    anonymous.client = app.test_client()
    before = (json.dumps(store.load(redis, "51", "jembrana-fest"), sort_keys=True),
              store.versions(redis, "51", "jembrana-fest"), store.live_entries(redis, "51", "jembrana-fest"))

    for (rule, method), spec in TABLE.items():
        path = (spec.path or rule).format(author=author["id"], tracking=author["tracking"])
        if spec.public:
            assert call(anonymous, method, path).status_code in (200, 400, 401), (rule, method)
            continue
        signed_out = call(anonymous, method, path)
        assert signed_out.status_code == 302 and "/studio/login" in signed_out.headers["Location"], (rule, method)
        for role, outsider in outsiders.items():
            if spec.scoped and role in spec.roles:
                assert call(outsider, method, path, spec.data).status_code == 404, ("other region", role, rule, method)
        for role, client in clients.items():
            status = call(client, method, path, spec.data).status_code
            if role in spec.roles:
                assert status not in (401, 403) and status < 500, (role, rule, method, status)
            else:
                assert status == 403, (role, rule, method, status)
    assert people and before  # what other regions cannot change is checked in the next test


def test_an_editor_of_another_region_sees_and_changes_nothing_of_it(app, redis):
    author = fixture_campaign(app, redis)
    make_staff(app, redis, "denpasar", "editor", "51.71")
    outsider = StaffClient(app, "denpasar")
    before = (store.load(redis, "51", "jembrana-fest"), store.versions(redis, "51", "jembrana-fest"),
              store.live_entries(redis, "51", "jembrana-fest"))
    assert "jembrana-fest" not in outsider.get("/studio/campaigns").text
    for (rule, method), spec in TABLE.items():
        if spec.scoped and "editor" in spec.roles:
            path = spec.path.format(tracking=author["tracking"])
            assert call(outsider, method, path, spec.data + (("version", "0"),)).status_code == 404
    form = campaign_form("denpasar-fest", regions="51.01.01.1006")
    refused = outsider.post("/studio/campaigns/new", form)
    assert refused.status_code == 400 and "di luar wilayah Anda" in refused.text
    refused = outsider.post("/studio/campaigns/new", campaign_form("denpasar-fest", regions="", sites="BALI-0001"))
    assert refused.status_code == 400 and "di luar wilayah Anda" in refused.text
    assert (store.load(redis, "51", "jembrana-fest"), store.versions(redis, "51", "jembrana-fest"),
            store.live_entries(redis, "51", "jembrana-fest")) == before
