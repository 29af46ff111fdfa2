"""E-mail to a desk inbox (the Inspektorat's admin desk) over SMTP.

SMTP has no idempotency key; the Message-ID is derived from the tracking
number and the channel, so a resend after a lost answer threads with the
first copy and mail clients and ticket desks that dedupe on it show one.
"""
from __future__ import annotations

import smtplib
import socket
import ssl
from email.message import EmailMessage
from typing import ClassVar

from .base import PermanentError, Receipt, Route, TemporaryError


def render(payload: dict) -> tuple[str, str]:
    """Subject and plain-text body of the mail for *payload*."""
    flags = [label for label, on in (("ANONIM", payload["anonim"]), ("RAHASIA", payload["rahasia"])) if on]
    subject = f"[LAPOR! Bali WiFi] {payload['tracking']} {payload['kind']}/{payload['category']}"
    if flags:
        subject += " [" + ", ".join(flags) + "]"
    loc = payload["location"]
    reporter = payload.get("reporter")
    lines = [
        f"Nomor pelacakan / tracking: {payload['tracking']}",
        f"Jenis: {payload['kind']}   Kategori: {payload['category']}",
        f"Anonim: {'ya' if payload['anonim'] else 'tidak'}   Rahasia: {'ya' if payload['rahasia'] else 'tidak'}",
    ]
    if payload["rahasia"]:
        lines.append("RAHASIA: laporan ini tidak boleh dipublikasikan.")
    if payload["anonim"]:
        lines.append("ANONIM: identitas pelapor disembunyikan.")
    lines += [
        f"Tanggal kejadian: {payload['incident_date']}",
        f"Lokasi: {loc['desa']}, {loc['kecamatan']}, {loc['kabupaten']} {payload.get('place') or ''}".rstrip(),
        "",
        payload["body"],
        "",
    ]
    if reporter:
        lines.append(f"Pelapor: {reporter.get('name') or '-'}  Kontak: {reporter.get('contact') or '-'}")
    lines.append(f"Status: {payload['status_url']}")
    return subject, "\n".join(lines) + "\n"


class EmailChannel:
    """Send each complaint as one plain-text mail."""

    kind: ClassVar[str] = "email"

    def __init__(self, *, name: str, host: str, sender: str, to: list[str], port: int = 25,
                 starttls: bool = False, ssl: bool = False, username: str = "", password: str = "",
                 timeout: float = 10.0, when: dict | None = None):
        if not to:
            raise ValueError("an email channel needs at least one address in 'to'")
        self.name, self.host, self.port, self.sender, self.to = name, host, int(port), sender, list(to)
        self.starttls, self.use_ssl, self.timeout = bool(starttls), bool(ssl), float(timeout)
        self.username, self.password = username, password
        self.route = Route.from_spec(when)

    def message(self, payload: dict, key: str) -> EmailMessage:
        """The mail for *payload*."""
        subject, text = render(payload)
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, ", ".join(self.to), subject
        domain = self.sender.rpartition("@")[2] or "portal.invalid"
        message["Message-ID"] = f"<{key}.{self.name}@{domain}>"
        message["X-Idempotency-Key"] = key
        message.set_content(text)
        return message

    def send(self, payload: dict, *, key: str) -> Receipt:
        """Deliver *payload* by SMTP."""
        message = self.message(payload, key)
        try:
            smtp_class = smtplib.SMTP_SSL if self.use_ssl else smtplib.SMTP
            with smtp_class(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(message)
        except smtplib.SMTPResponseException as error:
            kind = PermanentError if 500 <= error.smtp_code < 600 else TemporaryError
            raise kind(f"SMTP {error.smtp_code}", code=error.smtp_code) from None
        except smtplib.SMTPRecipientsRefused:
            raise PermanentError("SMTP recipients refused") from None
        except (smtplib.SMTPException, OSError, socket.timeout) as error:
            raise TemporaryError(type(error).__name__) from None
        return Receipt()
