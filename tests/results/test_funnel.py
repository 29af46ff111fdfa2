"""The funnel counters against a generated event stream whose answers the test computes itself."""
from __future__ import annotations

import datetime as dt
import random
import time
from collections import Counter, defaultdict
from types import SimpleNamespace

import redis as redis_py

from portal import events, funnel
from tests.conftest import CLUSTER

WITA_TZ = dt.timezone(dt.timedelta(hours=8))


def fake_site(n: int, kab: str) -> SimpleNamespace:
    kec = f"{kab}.0{n % 3 + 1}"
    return SimpleNamespace(site_id=f"S{kab.replace('.', '')}-{n}", kabupaten_kode=kab, kecamatan_kode=kec,
                           desa_kode=f"{kec}.100{n % 4}", type=("desa_adat", "puskesmas", "sekolah")[n % 3],
                           gateway_vendor="mikrotik")


def write(redis, evs, batch=400):
    for start in range(0, len(evs), batch):
        with redis.pipeline(transaction=False) as pipe:
            for event in evs[start:start + batch]:
                events.add_to(pipe, event, single_node=not CLUSTER)  # the one-script write, off a cluster
            pipe.execute()


def wita_day(at: float) -> str:
    return dt.datetime.fromtimestamp(at, WITA_TZ).strftime("%Y%m%d")


def test_wita_day_boundary(redis):
    site = fake_site(1, "51.71")
    # 2026-03-01 15:59:59 UTC is 23:59:59 WITA on 1 March; one second later it is 2 March.
    before = dt.datetime(2026, 3, 1, 15, 59, 59, tzinfo=dt.timezone.utc).timestamp()
    evs = [events.make_event("impression", site_id=site.site_id, campaign="c", lang="id", device="d1",
                             at=before, site=site, province="51"),
           events.make_event("impression", site_id=site.site_id, campaign="c", lang="id", device="d2",
                             at=before + 1, site=site, province="51")]
    write(redis, evs)
    first = funnel.read(redis, "p51", ["20260301"])
    second = funnel.read(redis, "p51", ["20260302"])
    assert first.totals["impression"] == 1 and second.totals["impression"] == 1
    assert dict(first.by_hour) == {"23": {**dict.fromkeys(events.STEPS, 0), "impression": 1}}
    assert set(second.by_hour) == {"00"}
    # A UTC-day reading would have put both on 1 March.
    assert funnel.read(redis, "p51", ["20260301", "20260302"]).uniques["impression"] == 2


def test_a_month_for_the_province_matches_the_stream(redis):
    rng = random.Random(13)
    sites = [fake_site(n, kab) for kab in ("51.01", "51.03", "51.71") for n in range(12)]
    start = dt.datetime(2026, 2, 28, 16, 0, tzinfo=dt.timezone.utc).timestamp()  # 1 March 00:00 WITA
    evs = []
    for _ in range(6000):
        site = rng.choice(sites)
        at = start + rng.uniform(-3600 * 3, 31 * 86400 + 3600 * 3)  # a little outside March on both sides
        kind = rng.choices(events.STEPS, weights=(50, 10, 6, 5, 3, 30))[0]
        campaign, variant = rng.choice([("ramah", "a"), ("ramah", "b"), ("banjir", "")])
        evs.append(events.make_event(kind, site_id=site.site_id, campaign=campaign, variant=variant,
                                     lang=rng.choice(["id", "en", "ban"]), device=f"dev{rng.randrange(900)}",
                                     at=at, site=site, province="51"))
    began = time.perf_counter()
    write(redis, evs)
    print(f"\nwrote {len(evs)} events in {time.perf_counter() - began:.2f}s")

    march = [f"202603{d:02d}" for d in range(1, 32)]
    in_march = [e for e in evs if wita_day(float(e["at"])).startswith("202603")]
    began = time.perf_counter()
    report = funnel.read(redis, "p51", march)
    took = time.perf_counter() - began
    print(f"read March for the whole province in {took * 1000:.1f} ms")
    assert took < 0.5  # milliseconds in practice; generous for two shared cores

    expect = Counter(e["kind"] for e in in_march)
    assert report.totals == {step: expect[step] for step in events.STEPS}
    by_variant = Counter((e["campaign"], e["variant"], e["kind"]) for e in in_march)
    for (campaign, variant), steps in report.by_variant.items():
        for step, n in steps.items():
            assert n == by_variant[(campaign, variant, step)]
    kab_counts = Counter((e["kab"], e["kind"]) for e in in_march)
    assert {k: v["impression"] for k, v in report.by_child.items()} == {
        kab: kab_counts[(kab, "impression")] for kab in ("5101", "5103", "5171")}
    hours = Counter((dt.datetime.fromtimestamp(float(e["at"]), WITA_TZ).strftime("%H"), e["kind"]) for e in in_march)
    assert all(report.by_hour[h][s] == hours[(h, s)] for h, s in hours)
    types = Counter((e["type"], e["kind"]) for e in in_march)
    assert all(report.by_type[t][s] == n for (t, s), n in types.items())
    weeks = defaultdict(Counter)
    for e in in_march:
        year, week, _ = dt.datetime.fromtimestamp(float(e["at"]), WITA_TZ).isocalendar()
        weeks[f"{year}-W{week:02d}"][e["kind"]] += 1
    assert {w: {s: v[s] for s in events.STEPS} for w, v in report.by_week.items()} == {
        w: {s: c[s] for s in events.STEPS} for w, c in weeks.items()}
    # HyperLogLog: within its ~0.81 % standard error of the true number of devices.
    true_devices = len({e["device"] for e in in_march if e["kind"] == "impression"})
    assert abs(report.uniques["impression"] - true_devices) <= max(3, true_devices * 0.03)

    # One kabupaten, one kecamatan, one desa: the same numbers, narrower.
    desa = sites[0].desa_kode.replace(".", "")
    desa_report = funnel.read(redis, f"r{desa}", march)
    assert desa_report.totals["grant"] == sum(1 for e in in_march if e["desa"] == desa and e["kind"] == "grant")
    kab_report = funnel.read(redis, "r5171", march, campaign="ramah")
    assert kab_report.totals["complaint"] == sum(
        1 for e in in_march if e["kab"] == "5171" and e["campaign"] == "ramah" and e["kind"] == "complaint")


def test_journey_counts_every_step(app, client, resident, redis):
    """A resident's impression, form, complaint and grant reach the counters of their site's regions."""
    resident.arrive()
    resident.submit()  # opens the form first
    resident.connect()
    day = funnel.today_wita(time.time()).strftime("%Y%m%d")
    report = funnel.read(redis, "r5101", [day])
    assert [report.totals[s] for s in ("impression", "form", "complaint", "grant")] == [1, 1, 1, 1]
    assert report.uniques["impression"] == 1
    assert redis.hget(events.LAST.format(site="BALI-0001"), "grant")
    assert funnel.read(redis, "r5171", [day]).totals["impression"] == 0


def test_a_published_campaign_is_counted_by_its_id_and_variant():
    # The landing names a published campaign c:<id>:<version>:<variant> (portal/campaigns).
    event = events.make_event("impression", site_id="", campaign="c:festival-2027:3:B", lang="id",
                              device="d", province="51")
    assert (event["campaign"], event["variant"]) == ("festival-2027", "B")
    builtin = events.make_event("impression", site_id="", campaign="sp4n-lapor", lang="id", device="d", province="51")
    assert (builtin["campaign"], builtin["variant"]) == ("sp4n-lapor", "")


def _dump(client) -> dict:
    """Every key's value (streams by their entries' fields), and whether it has a lifetime."""
    found = {}
    for key in client.keys("*"):
        kind = client.type(key)
        if kind == b"hash":
            value = client.hgetall(key)
        elif kind == b"stream":
            value = [fields for _, fields in client.xrange(key)]
        elif kind == b"string":  # a HyperLogLog
            value = client.pfcount(key)
        else:
            value = kind
        found[key] = (value, client.ttl(key) > 0)
    return found


def test_a_batch_summed_per_key_leaves_what_each_events_own_writes_leave(own_redis):
    """An event alone is one script off a cluster, or one per scope; a buffered batch has its counts
    summed per key first (issue 14). All three leave the same counters, uniques, stream and last-seen."""
    client = redis_py.Redis.from_url(own_redis.url)
    sites = [fake_site(n, kab) for n, kab in enumerate(["51.71", "51.03", "51.03", "51.08"])]
    rng = random.Random(14)
    evs = [events.make_event(rng.choice(["impression", "form", "complaint", "grant"]), site_id=site.site_id,
                             campaign=rng.choice(["c", "c:7:2:b"]), lang=rng.choice(["id", "en"]),
                             device=rng.choice(["", "d1", "d2", "d3"]), at=1772000000 + 3600 * rng.randrange(30),
                             site=site, province="51") for site in rng.choices(sites, k=120)]
    evs.append(events.make_event("impression", site_id="", campaign="c", lang="id", device="d9", province="51"))
    evs += [events.make_event("form", site_id=sites[0].site_id, campaign="c", lang="id", device=f"many{n}",
                              at=1772000000, site=sites[0], province="51") for n in range(2500)]  # > one PFADD
    dumps = []
    for write in ("per scope", "one script", "batch"):
        client.flushall()
        with client.pipeline(transaction=False) as pipe:
            if write == "batch":
                events.add_batch_to(pipe, evs)
            else:
                for event in evs:
                    events.add_to(pipe, event, single_node=write == "one script")
            pipe.execute()
        dumps.append(_dump(client))
    assert dumps[0] == dumps[1] == dumps[2]
    assert len(dumps[0]) > 50 and all(has_lifetime for key, (_, has_lifetime) in dumps[0].items()
                                      if b":fn:" in key or b":fu:" in key)
