"""One contract suite for every vendor in HOOKS, fed by recorded gateway exchanges (napalm's idea)."""
from __future__ import annotations

import inspect
import json
import re
from dataclasses import asdict
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from werkzeug.datastructures import MultiDict

import hotspot_hooks
from hotspot_hooks import HOOKS, Arrival, HookError, HotspotHook, SiteSettings, get_hook
from hotspot_hooks.urls import safe_http_url

RECORDINGS = Path(__file__).resolve().parent / "recordings"
GRANT_KINDS = ("redirect", "form", "done", "gateway")


def recorded_cases():
    cases = []
    for vendor in sorted(HOOKS):
        folder = RECORDINGS / vendor
        for case in sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []:
            cases.append(pytest.param(vendor, case, id=f"{vendor}/{case}"))
    return cases


def load(vendor: str, case: str) -> tuple[dict, dict]:
    folder = RECORDINGS / vendor / case
    return (json.loads((folder / "arrival.json").read_text()), json.loads((folder / "expected.json").read_text()))


def params_of(hook, recording: dict) -> dict:
    """The parameters the portal hands the adapter, built the way portal/splash.py builds them."""
    if recording["method"] == "GET":
        params = MultiDict(parse_qsl(recording["query"], keep_blank_values=True)).to_dict()
    else:
        params = dict(recording["form"])
    if getattr(hook, "signed", False):
        params.update({"_query": recording.get("query", ""), "_url": recording["url"]})
    return params


def matches(expected, actual) -> bool:
    """Compare JSON values; ``<any>`` inside an expected string stands for any non-empty text."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and expected.keys() == actual.keys() and all(
            matches(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, str) and "<any>" in expected:
        pattern = ".+".join(re.escape(part) for part in expected.split("<any>"))
        return isinstance(actual, str) and re.fullmatch(pattern, actual) is not None
    return expected == actual


@pytest.mark.parametrize("vendor", sorted(HOOKS))
def test_every_vendor_contributes_recordings(vendor):
    folder = RECORDINGS / vendor
    cases = [p for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []
    assert cases, f"no recorded exchange for {vendor}: add tests/hotspot_hooks/recordings/{vendor}/<case>/"
    happy = [c for c in cases if "arrival" in json.loads((c / "expected.json").read_text())]
    assert happy, f"{vendor} has no recording of a successful arrival"


@pytest.mark.parametrize(("vendor", "case"), recorded_cases())
def test_recorded_exchange(vendor, case):
    recording, expected = load(vendor, case)
    hook = get_hook(vendor)
    settings = SiteSettings(**expected["settings"])
    params = params_of(hook, recording)
    signed = getattr(hook, "signed", False)
    if "arrival_error" in expected:
        with pytest.raises(getattr(hotspot_hooks, expected["arrival_error"])):
            hook.parse_arrival(params, settings=settings if signed else None)
        return
    arrival = hook.parse_arrival(params, settings=settings if signed else None)
    assert arrival.vendor == vendor
    assert matches(expected["arrival"], {k: v for k, v in asdict(arrival).items() if k != "vendor"})
    # Sessions store arrivals as JSON: every field must survive the round trip.
    assert Arrival(**json.loads(json.dumps(asdict(arrival)))) == arrival
    if hook.server_side:
        return  # the controller exchange is replayed by tests/controllers/
    if "grant_error" in expected:
        with pytest.raises(getattr(hotspot_hooks, expected["grant_error"])):
            hook.authorize(arrival, settings)
        return
    grant = hook.authorize(arrival, settings)
    assert grant.kind in GRANT_KINDS
    if grant.kind in ("redirect", "form"):
        assert safe_http_url(grant.url) == grant.url
    assert matches(expected["grant"], json.loads(json.dumps(asdict(grant))))


@pytest.mark.parametrize("vendor", sorted(HOOKS))
def test_empty_arrival_is_refused_with_a_hook_error(vendor):
    with pytest.raises(HookError):
        get_hook(vendor).parse_arrival({})


@pytest.mark.parametrize("vendor", sorted(HOOKS))
def test_hook_class_matches_the_protocol(vendor):
    module_name, class_name = HOOKS[vendor].split(":")
    cls = type(get_hook(vendor))
    assert (cls.__module__, cls.__name__) == (module_name, class_name)
    assert module_name == f"hotspot_hooks.{vendor}"  # registry keys equal module names
    assert cls.vendor == vendor
    assert isinstance(cls.server_side, bool)
    assert isinstance(getattr(cls, "signed", False), bool)
    for method in ("parse_arrival", "authorize"):
        assert inspect.signature(getattr(cls, method)) == inspect.signature(getattr(HotspotHook, method)), method
    if getattr(cls, "signed", False):
        # The portal asks a signed hook for the nonce it must refuse to see twice.
        params = list(inspect.signature(cls.replay_key).parameters)
        assert params == ["self", "arrival"]
