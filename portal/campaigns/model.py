"""A campaign as staff write it: content per language and variant, look, schedule, targeting.

``validate`` returns problems as ``(field, message id)``; the studio translates them.
``S_`` only marks a message for the studio catalog (it is not the residents' gettext).
"""
from __future__ import annotations

import copy
import re

from ..i18n import LANGUAGES
from ..regions import regions
from ..sites import SITE_TYPES
from .contrast import passes_aa, valid_colour
from .schedule import Schedule, Targeting, parse_day, parse_hour

VARIANTS = ("A", "B")
TEXT_FIELDS = ("headline", "body", "cta")
LIMITS = {"headline": 120, "body": 2000, "cta": 60}
STATUSES = ("draft", "review", "published")
DEFAULT_THEME = {"bg": "#ffffff", "fg": "#1a1a1a", "accent": "#0b5394"}
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{2,47}$")


def S_(message: str) -> str:
    """Mark *message* for the studio catalog."""
    return message


def blank(region: str) -> dict:
    """A new campaign's working copy, owned by *region* (undotted code)."""
    return {
        "id": "", "name": "", "region": region, "status": "draft", "author": "", "updated_by": "",
        "content": {v: {lang: {f: "" for f in TEXT_FIELDS} for lang in LANGUAGES} for v in VARIANTS},
        "weights": {"A": 100, "B": 0},
        "theme": dict(DEFAULT_THEME), "image": "", "image_size": [0, 0],
        "schedule": {"start": "", "end": "", "hours_from": "", "hours_to": ""},
        "targeting": {"regions": [], "types": [], "sites": []},
        "priority": 0, "cap": 0, "emergency": False,
        "review": {}, "publish_at": 0,
    }


def merged(base: dict, changes: dict) -> dict:
    """*base* with the fields a form sent replaced."""
    result = copy.deepcopy(base)
    result.update(changes)
    return result


def schedule_of(campaign: dict) -> Schedule:
    """The campaign's schedule."""
    return Schedule(**campaign["schedule"])


def targeting_of(campaign: dict) -> Targeting:
    """The campaign's targeting, owned by its region."""
    t = campaign["targeting"]
    return Targeting(regions=tuple(t["regions"]), types=tuple(t["types"]), sites=tuple(t["sites"]),
                     owner=campaign["region"])


def live_variants(campaign: dict) -> list[str]:
    """Variants with a weight above zero (A always, as the fallback)."""
    return [v for v in VARIANTS if v == "A" or int(campaign["weights"].get(v, 0)) > 0]


def validate(campaign: dict, *, covers, site_lookup) -> list[tuple[str, str]]:
    """Problems with a working copy as the editor saves it (publishing checks more)."""
    problems: list[tuple[str, str]] = []
    if not _ID.match(campaign["id"]):
        problems.append(("id", S_("The short name must be 3-48 lower-case letters, digits or dashes.")))
    if not campaign["name"].strip() or len(campaign["name"]) > 120:
        problems.append(("name", S_("Give the campaign a name (at most 120 characters).")))
    for variant in VARIANTS:
        for lang in LANGUAGES:
            for f in TEXT_FIELDS:
                if len(campaign["content"][variant][lang][f]) > LIMITS[f]:
                    problems.append((f"{variant}-{lang}-{f}", S_("This text is too long.")))
    for v in VARIANTS:
        w = campaign["weights"].get(v)
        if not isinstance(w, int) or not 0 <= w <= 100:
            problems.append((f"weight-{v}", S_("A weight is a whole number from 0 to 100.")))
    theme = campaign["theme"]
    if not all(valid_colour(theme.get(k, "")) for k in DEFAULT_THEME):
        problems.append(("theme", S_("Colours are written as #rrggbb.")))
    else:
        if not passes_aa(theme["fg"], theme["bg"]):
            problems.append(("theme", S_("Text and background colours fail WCAG AA contrast (4.5:1).")))
        if not passes_aa("#ffffff", theme["accent"]):
            problems.append(("theme", S_("White text on the accent colour fails WCAG AA contrast (4.5:1).")))
    s = campaign["schedule"]
    for key in ("start", "end"):
        if s[key] and parse_day(s[key]) is None:
            problems.append(("schedule", S_("Dates are written as YYYY-MM-DD.")))
    for key in ("hours_from", "hours_to"):
        if s[key] and parse_hour(s[key]) is None:
            problems.append(("schedule", S_("Hours are written as HH:MM (00:00-23:59).")))
    if bool(s["hours_from"]) != bool(s["hours_to"]):
        problems.append(("schedule", S_("Give both daily hours, or neither.")))
    if s["start"] and s["end"] and parse_day(s["start"]) and parse_day(s["end"]) and s["end"] < s["start"]:
        problems.append(("schedule", S_("The end date is before the start date.")))
    if campaign["emergency"] and not s["end"]:
        problems.append(("schedule", S_("An emergency banner needs an end date.")))
    t = campaign["targeting"]
    known = regions()
    for code in t["regions"]:
        if code not in known:
            problems.append(("targeting", S_("Unknown region code.")))
        elif not covers(code):
            problems.append(("targeting", S_("A target region lies outside your region.")))
    if any(kind not in SITE_TYPES for kind in t["types"]):
        problems.append(("targeting", S_("Unknown site type.")))
    for site_id in t["sites"]:
        site = site_lookup(site_id)
        if site is None:
            problems.append(("targeting", S_("Unknown site.")))
        elif not covers(site.desa_kode):
            problems.append(("targeting", S_("A target site lies outside your region.")))
    if not isinstance(campaign["priority"], int) or not 0 <= campaign["priority"] <= 100:
        problems.append(("priority", S_("Priority is a whole number from 0 to 100.")))
    if not isinstance(campaign["cap"], int) or not 0 <= campaign["cap"] <= 100:
        problems.append(("cap", S_("The frequency cap is a whole number from 0 (none) to 100.")))
    return problems


def missing_translations(campaign: dict) -> list[str]:
    """``variant/lang/field`` of every empty text a published campaign needs (CTA is optional)."""
    return [f"{v}/{lang}/{f}" for v in live_variants(campaign) for lang in LANGUAGES
            for f in ("headline", "body") if not campaign["content"][v][lang][f].strip()]
