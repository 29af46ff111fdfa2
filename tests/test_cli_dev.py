"""The README's ``flask --app portal …`` commands next to ``make run``, as real subprocesses.

In a checkout where ``make run`` has made ``var/`` they need no exports: they use its
development secrets and embedded Redis (starting it when it is not running). Elsewhere a
missing setting or an unreachable Redis is one line that says what to do, never a traceback.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis as redis_py

from portal import create_app, dev_env
from portal.embedded_redis import EmbeddedRedis
from portal.site_secrets import open_secrets
from portal.sites import RECORDS, Site
from tests.conftest import make_config

ROOT = Path(__file__).resolve().parent.parent
FLASK = str(Path(sys.executable).parent / "flask")
EXAMPLE_CSV = ROOT / "deploy" / "sites.example.csv"


def bare_env(**extra: str) -> dict[str, str]:
    """The environment of a shell with no PORTAL_* exports (plus *extra*)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(extra)
    return env


def flask(*args: str, env: dict, stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real ``flask --app portal …`` and capture what it printed."""
    return subprocess.run([FLASK, "--app", "portal", *args], env=env, cwd=cwd or ROOT, input=stdin,
                          capture_output=True, text=True, timeout=120)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The command failed with exactly one line on stderr and no traceback; return it."""
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


@pytest.fixture
def dev_var(tmp_path):
    """A var/ as `make run` leaves it: development secrets, and the embedded Redis's directory."""
    var = tmp_path / "var"
    dev_env.create_secrets(var)
    yield var
    # Whatever server a command started (detached, on purpose) ends with the test.
    server = EmbeddedRedis(var / "redis")
    if server.pidfile.exists() and server.alive():
        os.kill(int(server.pidfile.read_text()), signal.SIGTERM)


def test_commands_use_make_runs_secrets_and_redis(dev_var, tmp_path):
    server = dev_env.embedded_redis(dev_var).start()  # running, as under `make run`
    try:
        env = bare_env(PORTAL_VAR_DIR=str(dev_var))
        imported = flask("sites", "import", str(EXAMPLE_CSV), env=env, cwd=tmp_path)
        assert imported.returncode == 0, imported.stderr
        assert imported.stdout.startswith("imported 8 sites")
        sealed = flask("sites", "secret", "set", "BALI-0003", "faskey", env=env, stdin="fas-key-of-bali-0003\n")
        assert sealed.returncode == 0, sealed.stderr
        assert "started" not in sealed.stderr  # it found the running server

        client = redis_py.Redis.from_url(server.url)
        site = Site.from_json(client.hget(RECORDS, "BALI-0003"))
        secrets = {key.removeprefix("PORTAL_"): value for key, value in dev_env.read_secrets(dev_var).items()}
        app = create_app(make_config(server.url, dev_var, **secrets))
        # Sealed with make run's PORTAL_DATA_KEYS, so the web server can open it.
        assert open_secrets(app.extensions["portal_crypto"], site) == {"faskey": "fas-key-of-bali-0003"}
    finally:
        server.stop()


def test_a_command_starts_the_embedded_redis_when_it_is_not_running(dev_var):
    env = bare_env(PORTAL_VAR_DIR=str(dev_var))
    result = flask("sites", "import", str(EXAMPLE_CSV), env=env)
    assert result.returncode == 0, result.stderr
    assert "started make run's embedded Redis" in result.stderr
    # It keeps running (detached) with the sites in it, for `make run` and the next command.
    client = redis_py.Redis(unix_socket_path=str(dev_var / "redis" / "redis.sock"), socket_timeout=2)
    assert client.hlen(RECORDS) == 8
    again = flask("sites", "show", "BALI-0001", env=env)
    assert again.returncode == 0 and "started" not in again.stderr
    assert again.stdout.startswith("BALI-0001: Wantilan Desa Adat Baler Bale Agung")


def test_production_without_secrets_is_refused_in_one_line(tmp_path):
    env = bare_env(PORTAL_VAR_DIR=str(tmp_path / "no-var"))
    for args in (("sites", "import", str(EXAMPLE_CSV)), ("deliver", "--burst"), ("--help",)):
        line = one_line_error(flask(*args, env=env))
        assert line.startswith("Error: PORTAL_SECRET_KEY, PORTAL_DEVICE_KEY, PORTAL_DATA_KEYS must be set")
        assert "make run" in line
    assert not (tmp_path / "no-var").exists()  # nothing was created on the way


def test_a_missing_redis_url_is_one_line(tmp_path):
    env = bare_env(PORTAL_VAR_DIR=str(tmp_path / "no-var"), PORTAL_SECRET_KEY="s", PORTAL_DEVICE_KEY="d",
                   PORTAL_DATA_KEYS="x5Fz1wB1c7hC4f3YkGmV0oQk7b6dG3pJ2mUu2cA9sWk=")
    line = one_line_error(flask("sites", "show", "BALI-0001", env=env))
    assert line.startswith("Error: PORTAL_REDIS_URL must be set")


def test_an_unreachable_redis_is_one_line_in_every_command_group(tmp_path):
    env = bare_env(PORTAL_VAR_DIR=str(tmp_path / "var"), PORTAL_SECRET_KEY="s", PORTAL_DEVICE_KEY="d",
                   PORTAL_DATA_KEYS="x5Fz1wB1c7hC4f3YkGmV0oQk7b6dG3pJ2mUu2cA9sWk=",
                   PORTAL_REDIS_URL=f"unix://{tmp_path / 'nobody.sock'}")
    for args in (("sites", "import", str(EXAMPLE_CSV)), ("sites", "show", "BALI-0001"),
                 ("delivery", "stats"), ("deadletters", "list"), ("keys", "rotate")):
        line = one_line_error(flask(*args, env=env))
        assert line.startswith(f"Error: Redis at {tmp_path / 'nobody.sock'} is unreachable"), line
        assert "PORTAL_REDIS_URL" in line


def test_the_redis_location_in_messages_carries_no_password():
    from portal.cli import _redis_location

    assert _redis_location("redis://:hunter2@redis.internal:6380/0") == "redis.internal:6380"
    assert _redis_location("rediss://user:pw@10.0.0.5") == "10.0.0.5:6379"


def test_dev_env_fills_only_what_the_environment_leaves_unset(dev_var, tmp_path):
    server = dev_env.embedded_redis(dev_var).start()
    try:
        found = dev_env.read_secrets(dev_var)
        config = {"SECRET_KEY": "from-env", "DEVICE_KEY": "", "DATA_KEYS": "", "REDIS_URL": "", "VAR_DIR": "var"}
        assert dev_env.fill_cli_config(config, {"PORTAL_VAR_DIR": str(dev_var)})
        assert config["SECRET_KEY"] == "from-env"
        assert config["DEVICE_KEY"] == found["PORTAL_DEVICE_KEY"]
        assert config["DATA_KEYS"] == found["PORTAL_DATA_KEYS"]
        assert config["REDIS_URL"] == server.url
        assert config["OUTBOX_DIR"] == str(dev_var / "outbox")  # the embedded default's visible channel

        # An outbox the environment names (even as empty) wins; a configured Redis keeps its own.
        config = {"REDIS_URL": "", "VAR_DIR": "var"}
        dev_env.fill_cli_config(config, {"PORTAL_VAR_DIR": str(dev_var), "PORTAL_OUTBOX_DIR": ""})
        assert "OUTBOX_DIR" not in config
        config = {"REDIS_URL": "redis://10.1.1.1:6379/0"}
        dev_env.fill_cli_config(config, {"PORTAL_VAR_DIR": str(dev_var)})
        assert config["REDIS_URL"] == "redis://10.1.1.1:6379/0" and "OUTBOX_DIR" not in config

        # Fully configured (production, the test suite): var/ is not even read.
        full = {"SECRET_KEY": "a", "DEVICE_KEY": "b", "DATA_KEYS": "c", "REDIS_URL": "redis://x", "VAR_DIR": "/v"}
        assert not dev_env.fill_cli_config(full, {"PORTAL_VAR_DIR": str(dev_var)})
        assert full["VAR_DIR"] == "/v"
    finally:
        server.stop()


def test_make_runs_var_is_the_checkouts_unless_portal_var_dir_says_otherwise(tmp_path):
    assert dev_env.var_dir({}) == ROOT / "var"
    assert dev_env.var_dir({"PORTAL_VAR_DIR": str(tmp_path)}) == tmp_path.resolve()
