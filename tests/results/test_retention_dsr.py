"""Retention removes exactly what is due; the data-subject tool finds everything stored about a person."""
from __future__ import annotations

import json
import re
import time

from portal import audit, events
from portal.complaints import store
from portal.delivery import state
from portal.tracking import new_tracking_number, normalize
from tests.conftest import tracking_number

DAY = 86400


def stored(redis, app, tracking: str, *, created: float, held: bool = False, device: str = "") -> None:
    with app.app_context():
        from portal.crypto import get_crypto

        crypto = get_crypto()
        plain = {"tracking": tracking, "created_at": f"{created:.3f}", "site_id": "BALI-0001", "device": device,
                 "campaign": "", "lang": "id"}
        complaint = store.StoredComplaint(plain=plain, sealed_text=crypto.seal({"body": "teks", "place": ""}),
                                          sealed_contact=crypto.seal({"name": "Wayan", "contact": "0811"}),
                                          held_reason="too_fast" if held else "", contact_index="ab" * 32)
        assert store.write(redis, "51", complaint)


def sealed(redis, tracking: str) -> bool:
    return redis.hexists(store.record_key("51", tracking), "sealed_text")


def test_retention_removes_exactly_what_is_due(app, runner, redis):
    now = time.time()
    stored(redis, app, "OLDDELIV1", created=now - 120 * DAY, device="dev-a")
    stored(redis, app, "NEWDELIV1", created=now - 20 * DAY, device="dev-b")
    stored(redis, app, "OLDHELD01", created=now - 40 * DAY, held=True)
    stored(redis, app, "NEWHELD01", created=now - 5 * DAY, held=True)
    retention = state.keys("51")["retention"]
    redis.zadd(retention, {"OLDDELIV1": now - 91 * DAY, "NEWDELIV1": now - 89 * DAY})
    for age, n in ((45 * DAY, 7), (31 * DAY, 5), (29 * DAY, 4), (1 * DAY, 3)):
        for i in range(n):
            redis.xadd(events.EVENTS, {"kind": "impression", "device": "x"}, id=f"{int((now - age) * 1000)}-{i}")

    result = runner.invoke(args=["results", "retention"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"events_removed": 12, "delivered_complaints_erased": 1,
                                         "held_complaints_erased": 1}
    assert redis.xlen(events.EVENTS) == 7
    assert not sealed(redis, "OLDDELIV1") and not sealed(redis, "OLDHELD01")
    assert sealed(redis, "NEWDELIV1") and sealed(redis, "NEWHELD01")
    old = store.read(redis, "51", "OLDDELIV1")
    assert "device" not in old and "contact_index" not in old and "sealed_contact" not in old
    assert old["site_id"] == "BALI-0001"  # plain, non-personal fields stay for the statistics
    assert store.read(redis, "51", "OLDHELD01")["status"] == "expired"
    assert redis.zscore(store.held_key("51"), "OLDHELD01") is None
    assert redis.zscore(store.held_key("51"), "NEWHELD01") is not None
    assert json.loads(runner.invoke(args=["results", "retention"]).output) == {
        "events_removed": 0, "delivered_complaints_erased": 0, "held_complaints_erased": 0}


def file_two(resident, client):
    numbers = []
    for contact in ("0812-3456-7890", "+62 812 3456 7890"):
        resident.arrive()
        numbers.append(normalize(tracking_number(resident.submit(name="Made", contact=contact).get_data(as_text=True))))
    resident.arrive(mac="11:22:33:44:55:66")  # another resident
    other = normalize(tracking_number(resident.submit(name="Nyoman", contact="0899 1111 2222").get_data(as_text=True)))
    return numbers, other


def dsr(runner, *args):
    result = runner.invoke(args=["results", "dsr", *args, "--actor", "ppdp"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_dsr_finds_exports_and_erases_everything_about_a_contact(app, client, runner, redis, resident):
    numbers, other = file_two(resident, client)
    found = dsr(runner, "find", "--contact", "081234567890")
    assert sorted(found["tracking_numbers"]) == sorted(numbers)
    assert all(c["has_contact"] and c["has_text"] for c in found["complaints"])
    assert found["events"] >= 6  # impression, form, complaint of each visit of that device
    exported = dsr(runner, "export", "--contact", "+62 812-3456-7890")
    assert {c["contact"]["contact"] for c in exported["complaints"]} == {"0812-3456-7890", "+62 812 3456 7890"}
    assert all(c["text"]["body"].startswith("Puskesmas") for c in exported["complaints"])
    kinds = {e["kind"] for e in exported["events"]}
    assert {"impression", "form", "complaint"} <= kinds
    device = exported["complaints"][0]["record"]["device"]
    assert all(e["device"] == device for e in exported["events"])

    assert runner.invoke(args=["results", "dsr", "erase", "--contact", "081234567890", "--actor", "x"]).exit_code != 0
    erased = dsr(runner, "erase", "--contact", "081234567890", "--yes")
    assert erased["complaints_erased"] == 2 and erased["events_removed"] == found["events"]
    for number in numbers:
        record = store.read(redis, "51", number)
        assert "sealed_text" not in record and "sealed_contact" not in record and "device" not in record
    assert dsr(runner, "find", "--contact", "081234567890")["tracking_numbers"] == []
    assert sealed(redis, other)  # the other resident keeps everything
    raw = json.dumps([e for e in audit.entries(redis, "51") if e["action"].startswith("dsr.")])
    assert [e["action"] for e in audit.entries(redis, "51")][:4] == ["dsr.find", "dsr.erase", "dsr.export", "dsr.find"]
    assert "3456" not in raw and "Made" not in raw  # the audit never holds the contact


def test_dsr_by_tracking_number_and_bad_input(app, client, runner, redis, resident):
    numbers, _ = file_two(resident, client)
    found = dsr(runner, "find", "--tracking", numbers[0])
    assert found["tracking_numbers"] == [numbers[0]] and len(found["complaints"]) == 1
    result = runner.invoke(args=["results", "dsr", "find", "--tracking", "nonsense", "--actor", "x"])
    # The CLI speaks the deployment's default language (Indonesian).
    assert result.exit_code == 2 and "bukan nomor pelacakan yang sah" in result.output


def test_studio_dsr_page_is_admin_only_with_csrf(app, client, redis, resident, as_staff):
    numbers, other = file_two(resident, client)
    as_staff("editor", "51")
    assert client.get("/studio/dsr/").status_code == 403
    as_staff("admin", "51", username="ppdp")
    page = client.get("/studio/dsr/").get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert client.post("/studio/dsr/", data={"action": "find", "contact": "081234567890"}).status_code == 400
    html = client.post("/studio/dsr/", data={"action": "find", "contact": "081234567890", "csrf": token}
                       ).get_data(as_text=True)
    assert all(n in html for n in numbers) and other not in html
    export = client.post("/studio/dsr/", data={"action": "export", "tracking": numbers[0], "csrf": token})
    assert export.mimetype == "application/json" and export.get_json()["complaints"][0]["contact"]
    refused = client.post("/studio/dsr/", data={"action": "erase", "tracking": numbers[0], "csrf": token})
    assert refused.status_code == 400 and "confirmation" in refused.get_data(as_text=True)
    done = client.post("/studio/dsr/", data={"action": "erase", "tracking": numbers[0], "csrf": token,
                                             "confirm": "yes"}).get_data(as_text=True)
    assert "Erased the personal data of 1 complaint(s)" in done and not sealed(redis, numbers[0])
    actions = [(e["actor"], e["action"]) for e in audit.entries(redis, "51")]
    assert actions[:3] == [("ppdp", "dsr.erase"), ("ppdp", "dsr.export"), ("ppdp", "dsr.find")]


def test_dsr_erase_drops_a_spooled_copy_so_replay_cannot_bring_it_back(app, runner, redis):
    with app.app_context():
        from portal.complaints.service import replay_spool
        from portal.crypto import get_crypto

        crypto = get_crypto()
        spool = app.extensions["portal_spool"]
        first, second = new_tracking_number(), new_tracking_number()
        for tracking in (first, second):
            plain = {"tracking": tracking, "created_at": f"{time.time():.3f}", "site_id": "BALI-0001", "device": "d"}
            spool.append("complaint", store.StoredComplaint(
                plain=plain, sealed_text=crypto.seal({"body": "teks", "place": ""})).to_spool())
        spool.append("event", {"kind": "impression", "site": "BALI-0001", "at": f"{time.time():.3f}"})
    found = dsr(runner, "find", "--tracking", first)
    assert found["complaints"] == [] and [s["tracking"] for s in found["spool"]] == [first]
    erased = dsr(runner, "erase", "--tracking", first, "--yes")
    assert erased["spooled_erased"] == 1
    with app.app_context():
        assert replay_spool() == 2  # the other complaint and the event
    assert store.read(redis, "51", first) is None and store.read(redis, "51", second) is not None


def test_a_kabupaten_admin_finds_only_complaints_filed_in_its_region(app, client, redis, resident, as_staff):
    numbers, _ = file_two(resident, client)  # filed in Kabupaten Jembrana (51.01)
    for region, expected in (("5171", []), ("5101", sorted(numbers))):
        as_staff("admin", region)
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/studio/dsr/").get_data(as_text=True)).group(1)
        export = client.post("/studio/dsr/", data={"action": "export", "contact": "081234567890", "csrf": token})
        assert sorted(export.get_json()["tracking_numbers"]) == expected
    assert [e["region"] for e in audit.entries(redis, "51", action="dsr.export")] == ["5101", "5171"]
