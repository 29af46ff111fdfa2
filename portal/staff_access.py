"""Who the signed-in staff member is, and the checks every staff page makes.

The studio (``portal/studio``) signs staff in and registers a loader with
``set_loader``; any blueprint with staff pages (the studio itself, results, fleet)
guards its views with ``require(...)`` and scopes every read and write with
``covers``. Keeping this seam small lets a page be guarded without importing the
studio's sign-in code.

Roles: ``admin`` (province administrator), ``editor`` (kabupaten/kota editor, or
province-wide when its region is the province), ``reviewer``, ``operator`` (sites
and gateway settings) and ``auditor`` (read-only). A staff member's ``region`` is a
Kemendagri code prefix: ``"51"`` for the whole province, ``"51.71"`` (or ``"5171"``) for
Kota Denpasar.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable
from urllib.parse import quote

from flask import abort, g, redirect, request

ROLES = ("admin", "editor", "reviewer", "operator", "auditor")


@dataclass(frozen=True)
class Staff:
    """A signed-in staff member as the pages see them."""

    id: str
    username: str
    role: str
    region: str
    lang: str = "id"

    def covers(self, code: str | None) -> bool:
        """True when *code* (a region code, or a site's desa code) lies in this member's region."""
        # Either spelling of a Kemendagri code, dotted ("51.71") or not ("5171"), on both sides.
        return bool(code) and str(code).replace(".", "").startswith(self.region.replace(".", ""))


_loader: Callable[[], Staff | None] | None = None


def set_loader(loader: Callable[[], Staff | None]) -> None:
    """Register how the current request's staff member is found (the studio does this)."""
    global _loader
    _loader = loader


def current() -> Staff | None:
    """The signed-in staff member of this request, or None."""
    if "staff" not in g:
        g.staff = _loader() if _loader is not None else None
    return g.staff


def require(*roles: str):
    """Guard a view: sign-in required, and one of *roles* (any role when none given)."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles: {sorted(unknown)}")

    def decorator(view):
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            staff = current()
            if staff is None:
                return redirect("/studio/login?next=" + quote(request.full_path.rstrip("?"), safe="/?=&"))
            if roles and staff.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        guarded.staff_roles = roles or ROLES  # read by the route-scoping test
        return guarded

    return decorator
