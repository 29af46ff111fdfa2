"""Operator kit: the configuration a site's gateway needs, generated from the site registry.

``build_kit(site, public_url=…, lapor_url=…)`` returns an :class:`OperatorKit`
(files to upload, exact steps, the walled garden, the RFC 8910 option 114
value); ``render_text(kit)`` prints it for ``flask --app portal sites config``.
An admin UI can render the same record. Secrets are never written into a kit:
the steps tell the operator which secret to set and where.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from ..sites import Site

TEMPLATES = Path(__file__).resolve().parent / "templates"
CAPTIVE_API_PATH = "/api/captive"
#: Stands for the site's authmon key in the kit: the operator puts the real one in (never printed).
AUTHMON_KEY_PLACEHOLDER = "AUTHMON_KEY"
OPTION_114_MAX = 255  # bytes: a DHCPv4 option's length is one octet (RFC 8910 §2.1)
#: Files generated per vendor, besides the steps every vendor gets.
FILES = {
    "mikrotik": {"hotspot.rsc": "mikrotik.rsc", "login.html": "mikrotik_login.html"},
    "opennds": {"opennds.uci": "opennds.uci"},
    "coovachilli": {"chilli.conf": "chilli.conf"},
    "wifidog": {"wifidog.conf": "wifidog.conf"},
    "pfsense": {"portal.html": "pfsense_portal.html"},
}


class KitError(Exception):
    """The deployment's settings cannot produce a valid kit (e.g. option 114 too long)."""


@dataclass(frozen=True)
class OperatorKit:
    """Everything an operator needs to hook one site's gateway to the portal."""

    site_id: str
    vendor: str
    arrival_url: str
    walled_garden: list[str]
    option_114: str
    steps: list[str]
    files: dict[str, str] = field(default_factory=dict)


def _rsc(value: object) -> str:
    """Escape a value for a double-quoted RouterOS script string."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")


def _uci(value: object) -> str:
    """Escape a value for a single-quoted UCI string."""
    return str(value).replace("'", "'\\''")


def _environment() -> Environment:
    # HTML pages (uploaded to routers, shown to residents) are escaped like the portal's own;
    # router scripts and configs are not HTML and use the rsc/uci filters instead.
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, keep_trailing_newline=True,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(rsc=_rsc, uci=_uci)
    return env


def option_114(public_url: str) -> str:
    """The RFC 8910 DHCPv4 option 114 value: the URI of the RFC 8908 API."""
    value = public_url.rstrip("/") + CAPTIVE_API_PATH
    if len(value.encode()) > OPTION_114_MAX:
        raise KitError(f"option 114 would be {len(value.encode())} bytes (at most {OPTION_114_MAX}): "
                       f"shorten PORTAL_PUBLIC_URL")
    return value


def walled_garden(public_url: str, lapor_url: str) -> list[str]:
    """Hosts a resident must reach before login: the portal and SP4N LAPOR!."""
    hosts = [urlsplit(public_url).hostname or "", urlsplit(lapor_url).hostname or "", "lapor.go.id"]
    return [h for i, h in enumerate(hosts) if h and h not in hosts[:i]]


def arrival_url(site: Site, public_url: str) -> str:
    """The URL the site's gateway sends residents to."""
    base = public_url.rstrip("/")
    if site.gateway_vendor == "unifi":
        # UniFi forces /guest/s/<site>/ itself; the operator only enters the portal's address.
        return f"{base}/guest/s/{site.settings.get('options', {}).get('unifi_site', 'default')}/"
    if site.gateway_vendor == "wifidog":
        # WiFiDog builds <Path>login/?… itself; portal/gateway_api.py serves /wifidog/login/.
        return f"{base}/wifidog/login/"
    if site.gateway_vendor == "opennds":
        return base + opennds_faspath(site, https=public_url.startswith("https://"))
    return f"{base}/hotspot/{site.gateway_vendor}"


def opennds_level(site: Site, *, https: bool) -> str:
    """The openNDS security level of *site*: its ``fas_secure_enabled`` option, else 3 (HTTPS) or 2."""
    options = site.settings.get("options", {})
    # "opennds_level" is what earlier kits read; the adapter and openNDS both say fas_secure_enabled.
    return str(options.get("fas_secure_enabled") or options.get("opennds_level") or ("3" if https else "2"))


def opennds_faspath(site: Site, *, https: bool) -> str:
    """The FAS path: it names the site (its own faskey decrypts), and at levels 3/4 the authmon key."""
    path = f"/hotspot/opennds/{site.site_id}"
    return path + f"/{AUTHMON_KEY_PLACEHOLDER}" if opennds_level(site, https=https) in ("3", "4") else path


def build_kit(site: Site, *, public_url: str, lapor_url: str, minutes: int = 120) -> OperatorKit:
    """Generate the operator kit of *site* for its gateway vendor."""
    options = dict(site.settings.get("options", {}))
    context = {
        "site": site,
        "options": options,
        "settings": site.settings,
        "public_url": public_url.rstrip("/"),
        "portal_host": urlsplit(public_url).hostname or "",
        "portal_https": public_url.startswith("https://"),
        "arrival_url": arrival_url(site, public_url),
        "walled_garden": walled_garden(public_url, lapor_url),
        "option_114": option_114(public_url),
        "minutes": int(site.settings.get("minutes", minutes)),
        "login_mode": site.settings.get("login_mode", ""),
        "opennds_level": opennds_level(site, https=public_url.startswith("https://")),
        "opennds_level_set": bool(options.get("fas_secure_enabled")),
        "opennds_faspath": opennds_faspath(site, https=public_url.startswith("https://")),
        "authmon_key_placeholder": AUTHMON_KEY_PLACEHOLDER,
    }
    env = _environment()
    files = {name: env.get_template(template).render(context)
             for name, template in FILES.get(site.gateway_vendor, {}).items()}
    steps_text = env.get_template(f"steps/{site.gateway_vendor}.txt").render(context)
    steps = [line.strip() for line in steps_text.splitlines() if line.strip()]
    return OperatorKit(site_id=site.site_id, vendor=site.gateway_vendor, arrival_url=context["arrival_url"],
                       walled_garden=context["walled_garden"], option_114=context["option_114"],
                       steps=steps, files=files)


def render_text(kit: OperatorKit) -> str:
    """The kit as one plain-text document, for the terminal or a download."""
    lines = [f"# Operator kit for site {kit.site_id} ({kit.vendor})", "",
             f"Arrival URL: {kit.arrival_url}",
             f"Walled garden: {', '.join(kit.walled_garden)}",
             f"DHCP option 114 (RFC 8910, captive portal API): {kit.option_114}", "", "## Steps", ""]
    lines += [f"{n}. {step}" for n, step in enumerate(kit.steps, 1)]
    for name, text in kit.files.items():
        lines += ["", f"## File: {name}", "", text.rstrip("\n")]
    return "\n".join(lines) + "\n"
