"""The SP4N LAPOR! integration API, configurable because its specification is private.

Endpoint, token and payload shape come from the deployment's configuration
(docs/domain.md §1: the API is documented only inside LAPOR!'s admin site)::

    {"name": "lapor", "type": "lapor", "url": "https://…/api/laporan",
     "token_env": "LAPOR_TOKEN", "token_header": "Authorization", "token_prefix": "Bearer ",
     "fields": {"judul": "title", "isi": "body", "anonim": "anonim", "rahasia": "rahasia",
                "nama": "reporter.name", "kontak": "reporter.contact", "sumber": "=wifi-bali"},
     "response": {"id": "trackingid", "url": "url"},
     "url_template": "https://www.lapor.go.id/laporan/{id}"}

``fields`` maps the receiver's names to dotted paths in the canonical
payload (``=text`` is a constant); without it the payload is sent as is.
``response`` says where the answer's tracking id and link are.
"""
from __future__ import annotations

import json
from typing import ClassVar

import requests

from .base import Receipt, Route
from .http import IDEMPOTENCY_HEADER, Sessions, post


def pick(data, path: str):
    """Return the value at dotted *path* in nested dicts, or None."""
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def map_fields(payload: dict, fields: dict) -> dict:
    """Build the receiver's body from *payload* through the field mapping."""
    body = {}
    for theirs, ours in fields.items():
        if isinstance(ours, str) and ours.startswith("="):
            body[theirs] = ours[1:]
        elif isinstance(ours, str):
            body[theirs] = pick(payload, ours)
        else:
            body[theirs] = ours  # a literal number, flag or list from the configuration
    return body


class LaporChannel:
    """POST the complaint to the LAPOR! API and read back its tracking id and link."""

    kind: ClassVar[str] = "lapor"

    def __init__(self, *, name: str, url: str, token: str = "", token_header: str = "Authorization",
                 token_prefix: str = "Bearer ", fields: dict | None = None, response: dict | None = None,
                 url_template: str = "", timeout: float = 10.0, when: dict | None = None):
        self.name, self.url, self.timeout = name, url, float(timeout)
        self.token, self.token_header, self.token_prefix = token, token_header, token_prefix
        self.fields = dict(fields or {})
        self.response = {"id": "id", "url": "url", **(response or {})}
        self.url_template = url_template
        self.route = Route.from_spec(when)
        self.sessions = Sessions()

    def send(self, payload: dict, *, key: str) -> Receipt:
        """Deliver *payload*; return LAPOR!'s id and link when it answers with them."""
        data = map_fields(payload, self.fields) if self.fields else payload
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: key}
        if self.token:
            headers[self.token_header] = self.token_prefix + self.token
        response = post(self.sessions.get(), self.url, body=body, headers=headers, timeout=self.timeout)
        return self.receipt(response)

    def receipt(self, response: requests.Response) -> Receipt:
        """Read the tracking id and link from an answer; an unreadable answer is still a success."""
        try:
            answer = response.json()
        except ValueError:
            return Receipt()
        remote_id = str(pick(answer, self.response["id"]) or "")
        url = str(pick(answer, self.response["url"]) or "")
        if not url and remote_id and self.url_template:
            url = self.url_template.format(id=remote_id)
        if not url.startswith(("https://", "http://")):
            url = ""  # shown as a link on the status page: never a javascript: or relative URL
        return Receipt(remote_id=remote_id[:64], url=url[:300])
