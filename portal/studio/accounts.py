"""Staff accounts: argon2id password hashes, lockout after repeated failures, optional TOTP.

Keys (province hash tag):

- ``portal:{p51}:staff:records``  hash  staff id -> JSON account
- ``portal:{p51}:staff:names``    hash  username -> staff id (HSETNX keeps names unique)
- ``portal:{p51}:staff:fails:<h>`` int  failures in a row (h: a hash of the username)
- ``portal:{p51}:staff:lock:<h>``  flag the account is locked until this key expires

A TOTP secret is sealed with the data keys (portal/crypto.py) like personal data.
Each password change bumps ``gen``: sessions signed with an older one end.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
import time

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..crypto import get_crypto
from ..regions import regions
from ..staff_access import ROLES, Staff
from .i18n import S_

_hasher = PasswordHasher()  # argon2id, the library's RFC 9106 low-memory profile
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,31}$")
MIN_PASSWORD = 12


class AccountError(ValueError):
    """A refused account change; ``message`` is a studio message id."""


def _k(province: str, name: str) -> str:
    return f"portal:{{p{province}}}:staff:{name}"


def _name_hash(username: str) -> str:
    return hashlib.sha256(username.lower().encode()).hexdigest()[:16]


def temporary_password() -> str:
    """A fresh temporary password, shown once to the administrator."""
    return secrets.token_urlsafe(12)


def region_code(text: str) -> str:
    """A dotted or undotted Kemendagri code as the undotted prefix staff regions use, or ''."""
    code = (text or "").strip()
    dotted = code if "." in code or len(code) <= 2 else ".".join(
        p for p in (code[:2], code[2:4], code[4:6], code[6:]) if p)
    if dotted not in regions() or regions()[dotted][1] not in ("provinsi", "kabupaten_kota"):
        return ""
    return dotted.replace(".", "")


def create(client, province: str, *, username: str, role: str, region: str, lang: str = "id") -> tuple[dict, str]:
    """Create an account with a temporary password; return ``(record, password)``."""
    username = (username or "").strip().lower()
    if not USERNAME.match(username):
        raise AccountError(S_("A username is 3-32 lower-case letters, digits, '.', '_' or '-'."))
    if role not in ROLES:
        raise AccountError(S_("Unknown role."))
    code = province if role == "admin" else region_code(region)
    if not code:
        raise AccountError(S_("The region must be the province or a kabupaten/kota code."))
    password = temporary_password()
    record = {"id": secrets.token_hex(8), "username": username, "role": role, "region": code,
              "lang": lang if lang in ("id", "en") else "id", "hash": _hasher.hash(password),
              "must_change": True, "totp": "", "gen": 1, "created": time.time()}
    if not client.hsetnx(_k(province, "names"), username, record["id"]):
        raise AccountError(S_("That username is taken."))
    client.hset(_k(province, "records"), record["id"], json.dumps(record))
    return record, password


def get(client, province: str, staff_id: str) -> dict | None:
    """An account by id, or None."""
    raw = client.hget(_k(province, "records"), staff_id) if staff_id else None
    return json.loads(raw) if raw else None


def by_name(client, province: str, username: str) -> dict | None:
    """An account by username, or None."""
    staff_id = client.hget(_k(province, "names"), (username or "").strip().lower())
    return get(client, province, staff_id.decode()) if staff_id else None


def all_staff(client, province: str) -> list[dict]:
    """Every account, by username (the staff page; not a request path)."""
    return sorted((json.loads(v) for v in client.hgetall(_k(province, "records")).values()),
                  key=lambda r: r["username"])


def _save(client, province: str, record: dict) -> None:
    client.hset(_k(province, "records"), record["id"], json.dumps(record))


def as_staff(record: dict) -> Staff:
    """The account as the pages see it (no hash, no secret)."""
    return Staff(id=record["id"], username=record["username"], role=record["role"],
                 region=record["region"], lang=record.get("lang", "id"))


def locked(client, province: str, username: str) -> bool:
    """True while the account is locked after too many failures."""
    return bool(client.exists(_k(province, "lock:" + _name_hash(username))))


def authenticate(client, province: str, username: str, password: str, code: str, *,
                 max_failures: int, lock_minutes: int) -> tuple[dict | None, str]:
    """Check a sign-in. Returns ``(record, "")`` or ``(None, reason)``: locked, bad, totp."""
    name = _name_hash(username or "")
    if client.exists(_k(province, "lock:" + name)):
        return None, "locked"
    record = by_name(client, province, username)
    ok = False
    if record is not None:
        try:
            ok = _hasher.verify(record["hash"], password or "")
        except (VerificationError, InvalidHashError):
            ok = False
    else:
        _hasher.hash(password or "")  # same cost for unknown names: no user enumeration by timing
    reason = "bad"
    if ok and record.get("totp"):
        secret = get_crypto().unseal(record["totp"])["secret"]
        code = (code or "").strip()
        ok = pyotp.TOTP(secret).verify(code, valid_window=1)
        if ok:
            # A code signs in once: seen again within the 90 s that valid_window=1 accepts, it is
            # a replay (a code read over a shoulder or from a proxy log).
            ok = bool(client.set(_k(province, f"totp-used:{record['id']}:{code}"), "1", nx=True, ex=90))
        reason = "totp"
    if not ok:
        fails_key = _k(province, "fails:" + name)
        with client.pipeline(transaction=True) as pipe:
            pipe.incr(fails_key)
            pipe.expire(fails_key, lock_minutes * 60)
            fails = pipe.execute()[0]
        if fails >= max_failures:
            with client.pipeline(transaction=True) as pipe:
                pipe.set(_k(province, "lock:" + name), "1", ex=lock_minutes * 60)
                pipe.delete(fails_key)
                pipe.execute()
            return None, "locked"
        return None, reason
    client.delete(_k(province, "fails:" + name))
    if _hasher.check_needs_rehash(record["hash"]):
        record["hash"] = _hasher.hash(password)
        _save(client, province, record)
    return record, ""


def set_password(client, province: str, record: dict, password: str) -> dict:
    """Set a staff member's own new password (ends their other sessions)."""
    if len(password or "") < MIN_PASSWORD:
        raise AccountError(S_("A password has at least 12 characters."))
    if _hasher_verify(record, password):
        raise AccountError(S_("Choose a password different from the current one."))
    record.update(hash=_hasher.hash(password), must_change=False, gen=int(record.get("gen", 1)) + 1)
    _save(client, province, record)
    return record


def _hasher_verify(record: dict, password: str) -> bool:
    try:
        return _hasher.verify(record["hash"], password)
    except (VerificationError, InvalidHashError):
        return False


def reset_password(client, province: str, record: dict) -> str:
    """Give an account a new temporary password (an administrator's action); unlocks it too."""
    password = temporary_password()
    record.update(hash=_hasher.hash(password), must_change=True, gen=int(record.get("gen", 1)) + 1)
    _save(client, province, record)
    client.delete(_k(province, "lock:" + _name_hash(record["username"])),
                  _k(province, "fails:" + _name_hash(record["username"])))
    return password


def new_totp_secret() -> str:
    """A fresh TOTP secret for the enrolment page."""
    return pyotp.random_base32()


def enable_totp(client, province: str, record: dict, secret: str, code: str) -> bool:
    """Turn on TOTP once the staff member proves their app shows the right code."""
    if not pyotp.TOTP(secret).verify((code or "").strip(), valid_window=1):
        return False
    record["totp"] = get_crypto().seal({"secret": secret})
    _save(client, province, record)
    return True


def disable_totp(client, province: str, record: dict) -> None:
    """Turn the second factor off."""
    record["totp"] = ""
    _save(client, province, record)


def set_language(client, province: str, record: dict, lang: str) -> None:
    """Remember the staff member's language (id or en)."""
    if lang in ("id", "en"):
        record["lang"] = lang
        _save(client, province, record)
