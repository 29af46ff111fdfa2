"""The webhook's signature, the e-mail desk on a real SMTP server, and configuration errors."""
from __future__ import annotations

import json

import pytest

from portal.delivery import settings, signing
from portal.delivery.settings import ConfigError

from .conftest import WEBHOOK_SECRET, drain, submit
from .standins import Receiver

BODY = "Puskesmas tutup jam 10 pagi padahal jadwalnya sampai jam 14."


def test_webhook_signature_is_verifiable_by_the_case_system(app, resident, delivery):
    case_system = Receiver().start()
    try:
        delivery["channels"] = [{"name": "kasus", "type": "webhook", "url": case_system.url,
                                 "secret_env": "TEST_WEBHOOK_SECRET"}]
        [tracking] = submit(resident)
        drain(app)
        headers, body = case_system.headers[tracking], case_system.bodies[0]
        assert signing.verify(WEBHOOK_SECRET, headers, body) == int(headers["X-Portal-Timestamp"])
        assert json.loads(body)["tracking"] == tracking
        with pytest.raises(signing.SignatureError):
            signing.verify(WEBHOOK_SECRET, headers, body.replace(b"kesehatan", b"pendidikan"))
        with pytest.raises(signing.SignatureError):
            signing.verify("another-secret", headers, body)
        with pytest.raises(signing.SignatureError):  # replayed an hour later
            signing.verify(WEBHOOK_SECRET, headers, body, now=int(headers["X-Portal-Timestamp"]) + 3600)
    finally:
        case_system.stop()


def test_email_desk_over_real_smtp(app, resident, delivery, smtp_server, redis):
    delivery["channels"] = [{"name": "desk", "type": "email", "host": "127.0.0.1", "port": smtp_server.port,
                             "sender": "portal@wifi.baliprov.go.id", "to": ["inspektorat@baliprov.go.id"]}]
    [named] = submit(resident, name="Made Wirawan", contact="081234567890")
    [anonymous] = submit(resident, name="Ketut Sari", contact="089876543210", anonim="y", rahasia="y")
    drain(app)
    assert len(smtp_server.messages) == 2
    by_key = {m["X-Idempotency-Key"]: m for m in smtp_server.messages}
    plain = by_key[named]
    assert plain["Message-ID"] == f"<{named}.desk@wifi.baliprov.go.id>"
    assert smtp_server.envelopes[0][1] == ["<inspektorat@baliprov.go.id>"]
    assert BODY in plain.get_content() and "Made Wirawan" in plain.get_content()
    secret = by_key[anonymous]
    assert "[ANONIM, RAHASIA]" in secret["Subject"]
    text = secret.get_content()
    assert "Ketut" not in text and "089876543210" not in text
    assert "RAHASIA" in text and "ANONIM" in text


def test_smtp_down_is_a_retry_not_a_loss(app, resident, delivery, smtp_server, redis):
    from portal.delivery import state

    delivery["channels"] = [{"name": "desk", "type": "email", "host": "127.0.0.1", "port": smtp_server.port,
                             "sender": "portal@wifi.baliprov.go.id", "to": ["desk@baliprov.go.id"]}]
    smtp_server.stop()
    [tracking] = submit(resident)
    from .conftest import make_forwarder, turns_until

    worker = make_forwarder(app)
    turns_until(app, worker, lambda: redis.zscore(state.keys("51")["retry"], tracking) is not None)
    assert redis.xlen(state.keys("51")["dead"]) == 0


def test_secrets_come_from_the_environment_only(monkeypatch):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(ConfigError, match="NOT_SET_ANYWHERE"):
        settings.parse({"channels": [{"type": "lapor", "url": "https://x", "token_env": "NOT_SET_ANYWHERE"}]})
    with pytest.raises(ConfigError, match="supported: email, lapor, outbox, webhook"):
        settings.parse({"channels": [{"type": "fax"}]})
    with pytest.raises(ConfigError, match="retry"):
        settings.parse({"retry": {"max": 0}})


def test_toml_configuration_file(tmp_path, monkeypatch):
    monkeypatch.setenv("T_TOKEN", "s3cret")
    path = tmp_path / "delivery.toml"
    path.write_text('claim_idle = 90\n[retry]\nmax = 5\nbase = 10\ncap = 100\n'
                    '[[channels]]\nname = "lapor"\ntype = "lapor"\nurl = "https://lapor.example/api"\n'
                    'token_env = "T_TOKEN"\n[channels.when]\nkabupaten_kode = ["51.71"]\n')
    parsed = settings.parse(settings.read_file(str(path)))
    assert parsed.claim_idle == 90 and parsed.retry.max == 5
    assert parsed.channels[0].token == "s3cret"
    assert parsed.channels[0].route.matches({"kabupaten_kode": "51.71"})
    assert not parsed.channels[0].route.matches({"kabupaten_kode": "51.01"})
