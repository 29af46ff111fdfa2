"""One contract suite for every vendor in HOOKS, fed by recorded gateway exchanges (napalm's idea)."""
from __future__ import annotations

import dataclasses
import inspect
import json
import re
from dataclasses import asdict
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from werkzeug.datastructures import MultiDict

import hotspot_hooks
from hotspot_hooks import HOOKS, Arrival, Grant, HookError, HotspotHook, SiteSettings, get_hook
from hotspot_hooks import HOOKS, Arrival, HookError, HotspotHook, SiteSettings, get_hook
from hotspot_hooks.guards import DEFAULT_ROUTER_HOSTS, UNKNOWN_ROUTER_HOSTS, GrantRefusedError, host_allowed
from hotspot_hooks.meraki import grant_url
from hotspot_hooks.urls import safe_http_url

RECORDINGS = Path(__file__).resolve().parent / "recordings"
GRANT_KINDS = ("redirect", "form", "done", "gateway")
FLEET_PASSWORD = "fleet-Passw0rd-of-every-router"
FLEET_FASKEY = "f1ee7f1ee7f1ee7f1ee7f1ee7f1ee7f1ee7f1ee7f1ee7f1ee7f1ee7f1ee7f1ee"
EVIL = "evil.example"


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


def granted_cases():
    """Recorded cases whose grant the browser performs (server-side grants go to a controller)."""
    return [case for case in recorded_cases()
            if not get_hook(case.values[0]).server_side and "grant" in load(*case.values)[1]]


def target_of(grant) -> str:
    """Where the grant sends the browser: the router (or Meraki's cloud); "" when nowhere."""
    if grant.kind in ("redirect", "form") or grant.fields.get("protocol") == "wifidog":
        return grant.url
    return ""  # "done" and authmon grants only show the continue URL as a link


def target_allowed(vendor: str, url: str, settings: SiteSettings) -> bool:
    if vendor == "meraki":
        return grant_url(url) == url  # Meraki grants at its cloud, never at the arrival's choice
    return host_allowed(urlsplit(url).hostname or "", settings.router_hosts)


def parsed(vendor: str, case: str) -> tuple[Arrival, dict]:
    recording, expected = load(vendor, case)
    hook = get_hook(vendor)
    settings = SiteSettings(**expected["settings"])
    return hook.parse_arrival(params_of(hook, recording), settings=settings if getattr(hook, "signed", False) else None), expected


def params_of(hook, recording: dict) -> dict:
    """The parameters the portal hands the adapter, built the way portal/splash.py builds them."""
    if recording["method"] == "GET":
        params = MultiDict(parse_qsl(recording["query"], keep_blank_values=True)).to_dict()
    else:
        params = dict(recording["form"])
    if hook.signed:
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
    signed = hook.signed
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
    # Pinning: a grant's target host is always one of the site's allowed hosts.
    if target_of(grant):
        assert target_allowed(vendor, target_of(grant), settings), grant.url
    assert matches(expected["grant"], json.loads(json.dumps(asdict(grant))))


@pytest.mark.parametrize(("vendor", "case"), granted_cases())
def test_a_grant_never_goes_to_a_host_the_arrival_made_up(vendor, case):
    arrival, expected = parsed(vendor, case)
    settings = SiteSettings(**{**expected["settings"], "router_hosts": DEFAULT_ROUTER_HOSTS})
    grant = get_hook(vendor).authorize(arrival, settings)
    host = urlsplit(target_of(grant)).hostname
    if not host:
        return  # nothing sent anywhere (authmon): the rule holds trivially
    # The same arrival naming another host, as an unsigned (or forged) redirect can.
    moved = dataclasses.replace(arrival, extra={k: v.replace(host, EVIL) for k, v in arrival.extra.items()})
    assert moved.extra != arrival.extra
    with pytest.raises(GrantRefusedError) as refused:
        get_hook(vendor).authorize(moved, settings)
    assert refused.value.reason == "router_host"


@pytest.mark.parametrize(("vendor", "case"), granted_cases())
@pytest.mark.parametrize("registered", [False, True], ids=["unknown-gateway", "site-without-own-password"])
def test_no_fleet_secret_in_any_grant(vendor, case, registered):
    arrival, expected = parsed(vendor, case)
    own = {k: v for k, v in expected["settings"].items() if k not in ("secrets",)}
    # Only the deployment-wide secrets, as the portal gives them when the site has none of its own.
    secrets = {"fleet_password": FLEET_PASSWORD, "faskey": FLEET_FASKEY}
    settings = SiteSettings(**{**own, "secrets": secrets,
                               "router_hosts": DEFAULT_ROUTER_HOSTS if registered else UNKNOWN_ROUTER_HOSTS})
    try:
        grant = get_hook(vendor).authorize(arrival, settings)
    except HookError:
        return  # refused: nothing left the server
    shown = json.dumps(asdict(grant))
    assert FLEET_PASSWORD not in shown and FLEET_FASKEY not in shown and FLEET_FASKEY[:32] not in shown
    if target_of(grant):
        assert target_allowed(vendor, target_of(grant), settings)


@pytest.mark.parametrize("vendor", sorted(v for v in HOOKS if not get_hook(v).server_side))
def test_router_hosts_without_the_recorded_router_refuse_its_grant(vendor):
    # Every browser-side vendor honours router_hosts, or (Meraki) grants at its cloud only.
    cases = [c for c in granted_cases() if c.values[0] == vendor]
    assert cases, f"{vendor}: record a granted arrival"
    for case in cases:
        arrival, expected = parsed(*case.values)
        settings = SiteSettings(**{**expected["settings"], "router_hosts": ("192.0.2.0/24",)})
        try:
            grant = get_hook(vendor).authorize(arrival, settings)
        except GrantRefusedError as error:
            assert error.reason == "router_host"
            continue
        assert not target_of(grant) or vendor == "meraki", grant.url


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
    assert isinstance(cls.signed, bool)
    for method in ("parse_arrival", "authorize"):
        assert inspect.signature(getattr(cls, method)) == inspect.signature(getattr(HotspotHook, method)), method
    if cls.signed:
        # The portal asks a signed hook for the nonce it must refuse to see twice.
        params = list(inspect.signature(cls.replay_key).parameters)
        assert params == ["self", "arrival"]


# --- the declared contract (hotspot_hooks/base.py: HotspotHook) --------------------------------

CONTRACT_ATTRIBUTES = ("vendor", "server_side", "signed", "supports_deauth")
PORTAL_SOURCES = sorted((Path(__file__).resolve().parents[2] / "portal").rglob("*.py"))
HOOK_GETATTR = re.compile(r"getattr\(\s*(hook|cls|type\(hook\))\b")


@pytest.mark.parametrize("vendor", sorted(HOOKS))
def test_every_hook_declares_the_contract_attributes_on_its_own_class(vendor):
    cls = type(get_hook(vendor))
    for name in CONTRACT_ATTRIBUTES:
        # On the class itself: the portal reads them directly, with no getattr default to fall back on.
        assert name in vars(cls), f"{cls.__name__} must declare {name}"
        assert name in HotspotHook.__annotations__, name
    assert all(isinstance(vars(cls)[name], bool) for name in CONTRACT_ATTRIBUTES[1:])


@pytest.mark.parametrize("vendor", sorted(HOOKS))
def test_declared_capabilities_come_with_their_methods(vendor):
    cls = type(get_hook(vendor))
    for flag, method in (("signed", "replay_key"), ("supports_deauth", "deauthorize")):
        if getattr(cls, flag):
            assert inspect.signature(getattr(cls, method)) == inspect.signature(getattr(HotspotHook, method)), method
        else:
            assert method not in vars(cls), f"{cls.__name__}.{method} exists but {flag} is False"
    if cls.server_side:
        # Controller vendors check the client is there before authorising (NotAClientError otherwise).
        assert list(inspect.signature(cls.verify_client).parameters) == ["self", "arrival", "settings"]


@pytest.mark.parametrize("vendor", sorted(HOOKS))
def test_calls_controller_follows_the_declaration(vendor):
    hook = get_hook(vendor)
    assert hotspot_hooks.calls_controller(hook, SiteSettings()) is hook.server_side
    rest = hotspot_hooks.calls_controller(hook, SiteSettings(login_mode="rest"))
    assert rest is (hook.server_side or vendor == "mikrotik")


def test_the_portal_reads_no_hook_attribute_through_getattr():
    offenders = [f"{path.name}:{number}" for path in PORTAL_SOURCES
                 for number, line in enumerate(path.read_text().splitlines(), 1) if HOOK_GETATTR.search(line)]
    assert not offenders, offenders


def test_grant_kinds_are_the_documented_ones():
    documented = re.findall(r'^    - ``"(\w+)"``:', Grant.__doc__, flags=re.MULTILINE)
    assert tuple(documented) == GRANT_KINDS
    assert '"authmon"' in Grant.__doc__ and '"wifidog"' in Grant.__doc__


def test_adding_a_vendor_is_written_in_one_place():
    steps = hotspot_hooks.__doc__.split("Adding a vendor", 1)[1]
    root = Path(__file__).resolve().parents[2]
    named = re.findall(r"``((?:hotspot_hooks|portal|tests|deploy)/[\w/<>.-]+|README\.md)``", steps)
    assert len({n.split("<")[0] for n in named}) >= 9
    for path in named:
        if "<" not in path:
            assert (root / path).exists(), path
