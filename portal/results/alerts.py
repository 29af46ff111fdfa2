"""Offline/back alerts with flapping suppressed, sent by signed webhook and by e-mail.

Each site has an alert state in ``portal:{p51}:fleet:alerts`` (hash site -> JSON):
``{"state": "up"|"down", "since": t, "pending": state or null, "pending_since": t}``.
A check compares what the heartbeats say (``down`` = offline, ``up`` = online or stale)
with the alerted state. A change becomes *pending*; it is alerted only once it has held
for ``FLEET_HOLD_DOWN_SECONDS``, and a site that returns to its alerted state before that
cancels it, so a flapping site sends nothing until it settles. A site seen for the first
time takes its current state without an alert (no storm when the checker first runs).

The webhook body is JSON; ``X-Portal-Signature: sha256=<hex HMAC-SHA256(secret, body)>``.
Alerts are idempotent for receivers: ``id`` is ``<site>:<state>:<since>`` (the e-mail's
Message-ID is derived from it). An alert a channel could not take waits in an outbox and is
sent again by the next check, on every channel, so receivers should deduplicate on ``id``.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import time
import urllib.request
from dataclasses import asdict, dataclass
from email.message import EmailMessage

log = logging.getLogger(__name__)
ALERTS = "portal:{{p{prov}}}:fleet:alerts"
LOCK = "portal:{{p{prov}}}:fleet:check-lock"
#: Alerts a channel failed to take, retried by the next check (id -> JSON).
OUTBOX = "portal:{{p{prov}}}:fleet:alert-outbox"


@dataclass(frozen=True)
class Alert:
    """A site went down or came back, and has stayed so for the hold-down time."""

    site_id: str
    state: str  # "down" or "up"
    since: float
    name: str = ""
    kabupaten_kode: str = ""

    @property
    def id(self) -> str:
        return f"{self.site_id}:{self.state}:{self.since:.0f}"

    def body(self) -> dict:
        return {"id": self.id, "site_id": self.site_id, "name": self.name, "kabupaten_kode": self.kabupaten_kode,
                "state": "offline" if self.state == "down" else "online", "since": round(self.since)}


def step(previous: dict | None, observed: str, now: float, hold: float) -> tuple[dict, bool]:
    """The next alert state of one site, and whether an alert goes out now."""
    if previous is None:
        return {"state": observed, "since": now, "pending": None, "pending_since": None}, False
    state = dict(previous)
    if observed == state["state"]:
        state["pending"] = state["pending_since"] = None  # back before the hold-down ended: a flap
        return state, False
    if state.get("pending") != observed:
        state["pending"], state["pending_since"] = observed, now
    if now - state["pending_since"] >= hold:
        return {"state": observed, "since": state["pending_since"], "pending": None, "pending_since": None}, True
    return state, False


def check(client, province: str, health: list, *, hold: float, now: float | None = None) -> list[Alert]:
    """Advance every site's alert state from its health; return the alerts due (state is saved)."""
    now = time.time() if now is None else now
    key = ALERTS.format(prov=province)
    stored = client.hgetall(key)
    previous = {k.decode(): json.loads(v) for k, v in stored.items()}
    updates, alerts = {}, []
    for site in health:
        observed = "down" if site.state == "offline" else "up"
        new, fire = step(previous.get(site.site_id), observed, now, hold)
        if new != previous.get(site.site_id):
            updates[site.site_id] = json.dumps(new)
        if fire:
            alerts.append(Alert(site.site_id, new["state"], new["since"], site.name, site.kabupaten_kode))
    if updates:
        client.hset(key, mapping=updates)
    return alerts


def sign(secret: str, body: bytes) -> str:
    """The webhook signature header value of *body*."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send_webhook(url: str, secret: str, alert: Alert, *, timeout: float = 10.0) -> None:
    """POST one alert; raises on a network error or a non-2xx answer."""
    body = json.dumps(alert.body(), sort_keys=True).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Portal-Signature": sign(secret, body), "X-Portal-Alert": alert.id})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (operator-set https URL)
        if not 200 <= response.status < 300:
            raise OSError(f"webhook answered {response.status}")


def send_email(config, alert: Alert, *, timeout: float = 10.0) -> None:
    """Mail one alert to ``ALERT_EMAIL_TO``."""
    word = "OFFLINE" if alert.state == "down" else "back ONLINE"
    message = EmailMessage()
    message["Subject"] = f"[Bali WiFi] {alert.site_id} {word}"
    message["From"] = config["ALERT_EMAIL_FROM"]
    message["To"] = config["ALERT_EMAIL_TO"]
    message["Message-ID"] = f"<{alert.id.replace(':', '.')}@portal-alerts>"
    since = time.strftime("%Y-%m-%d %H:%M WITA", time.gmtime(alert.since + 8 * 3600))
    message.set_content(f"Site {alert.site_id} ({alert.name}, kabupaten {alert.kabupaten_kode}) is {word} "
                        f"since {since}.\n")
    with smtplib.SMTP(config["ALERT_SMTP_HOST"], int(config["ALERT_SMTP_PORT"]), timeout=timeout) as smtp:
        smtp.send_message(message)


def notify(config, alerts: list[Alert]) -> tuple[dict[str, int], list[Alert]]:
    """Send *alerts* on every configured channel; return counts, and the alerts some channel refused."""
    sent = {"webhook": 0, "email": 0, "failed": 0}
    refused = []
    for alert in alerts:
        ok = True
        if config.get("ALERT_WEBHOOK_URL"):
            try:
                send_webhook(config["ALERT_WEBHOOK_URL"], config.get("ALERT_WEBHOOK_SECRET", ""), alert)
                sent["webhook"] += 1
            except OSError as error:
                ok = False
                log.error("fleet alert %s: webhook failed (%s)", alert.id, type(error).__name__)
        if config.get("ALERT_EMAIL_TO"):
            try:
                send_email(config, alert)
                sent["email"] += 1
            except (OSError, smtplib.SMTPException) as error:
                ok = False
                log.error("fleet alert %s: e-mail failed (%s)", alert.id, type(error).__name__)
        if not ok:
            sent["failed"] += 1
            refused.append(alert)
    return sent, refused


def deliver(client, province: str, config, due: list[Alert]) -> dict[str, int]:
    """Send the alerts waiting from earlier checks and the new ones; keep the refused ones for the next."""
    key = OUTBOX.format(prov=province)
    waiting = [Alert(**json.loads(raw)) for raw in client.hvals(key)]
    sent, refused = notify(config, waiting + due)
    with client.pipeline(transaction=True) as pipe:
        pipe.delete(key)
        if refused:
            pipe.hset(key, mapping={a.id: json.dumps(asdict(a)) for a in refused})
        pipe.execute()
    sent["retried"] = len(waiting)
    sent["waiting"] = len(refused)
    return sent
