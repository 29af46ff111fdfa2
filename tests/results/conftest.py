"""Fixtures for the results pages: a staff member through the staff-access seam, and event writers."""
from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from portal import events, staff_access


@pytest.fixture
def as_staff():
    """Sign a staff member in for the test: ``as_staff("editor", "5171")``."""
    def sign_in(role: str, region: str = "51", username: str | None = None, lang: str = "en"):
        member = staff_access.Staff(id=f"u-{role}-{region}", username=username or f"{role}{region}",
                                    role=role, region=region, lang=lang)
        staff_access.set_loader(lambda: member)
        return member
    yield sign_in
    staff_access.set_loader(lambda: None)


def site_in(kab: str, n: int = 1, site_type: str = "desa_adat") -> SimpleNamespace:
    """A stand-in site of kabupaten *kab* (dotted code), for events written without the registry."""
    kec = f"{kab}.01"
    return SimpleNamespace(site_id=f"T{kab.replace('.', '')}-{n}", kabupaten_kode=kab, kecamatan_kode=kec,
                           desa_kode=f"{kec}.1001", type=site_type, gateway_vendor="opennds")


def write_events(redis, site, day: dt.date, counts: dict, *, campaign="c1", variant="", lang="id"):
    """Write ``counts`` = {step: n} events at noon WITA of *day* for *site*; devices d0..dn-1."""
    noon = dt.datetime(day.year, day.month, day.day, 4, 0, tzinfo=dt.timezone.utc).timestamp()
    with redis.pipeline(transaction=False) as pipe:
        for step, n in counts.items():
            for i in range(n):
                events.add_to(pipe, events.make_event(step, site_id=site.site_id, campaign=campaign,
                                                      variant=variant, lang=lang, device=f"d{i}", at=noon + i,
                                                      site=site, province="51"))
        pipe.execute()
