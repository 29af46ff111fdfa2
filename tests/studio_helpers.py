"""Helpers for studio tests: staff accounts, signed-in clients, and a campaign form."""
from __future__ import annotations

import re

from portal.studio import accounts

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "correct horse battery staple"


_HASH: list[str] = []


def make_staff(app, redis, username: str, role: str, region: str = "51") -> dict:
    """An account with a known, already-changed password."""
    if not _HASH:
        _HASH.append(accounts._hasher.hash(PASSWORD))  # argon2id is slow on purpose: hash once per run
    with app.app_context():
        record, _temporary = accounts.create(redis, "51", username=username, role=role, region=region)
        record.update(hash=_HASH[0], must_change=False)
        accounts._save(redis, "51", record)
    return record


class StaffClient:
    """A test client signed in to the studio, sending the CSRF token with every form."""

    def __init__(self, app, username: str, password: str = PASSWORD):
        self.client = app.test_client()
        self.username = username
        self.response = self.post("/studio/login", {"username": username, "password": password})

    def token(self, path: str = "/studio/login") -> str:
        return CSRF.search(self.client.get(path).get_data(as_text=True)).group(1)

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict | None = None, **kwargs):
        data = dict(data or {})
        data.setdefault("csrf_token", self.token())
        return self.client.post(path, data=data, **kwargs)


def campaign_form(campaign_id: str = "festival-2027", **changes) -> dict:
    """A complete campaign in all three languages targeting one desa of Jembrana."""
    form = {"id": campaign_id, "name": "Festival Jembrana", "theme-bg": "#ffffff", "theme-fg": "#1a1a1a",
            "theme-accent": "#0b5394", "regions": "51.01.01.1006", "priority": "10", "cap": "0", "weight-B": "0"}
    texts = {"id": ("Festival Makepung 2027", "Datang ke **festival** di Jembrana."),
             "en": ("Makepung Festival 2027", "Come to the **festival** in Jembrana."),
             "ban": ("Festival Makepung 2027 ring Jembrana", "Rauh ke **festival** ring Jembrana.")}
    for lang, (headline, body) in texts.items():
        form[f"A-{lang}-headline"] = headline
        form[f"A-{lang}-body"] = body
        form[f"A-{lang}-cta"] = ""
    form.update(changes)
    return form
