"""The systemd units of the fleet check and the retention job run commands that exist."""
from __future__ import annotations

import configparser
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).resolve().parents[2] / "deploy" / "systemd"


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(SYSTEMD / name, encoding="utf-8")
    return parser


@pytest.mark.parametrize("name", ["portal-fleet-check", "portal-retention"])
def test_timer_runs_a_real_command(name, runner):
    service, timer = unit(f"{name}.service"), unit(f"{name}.timer")
    assert service["Service"]["Type"] == "oneshot"
    assert set(timer["Timer"]) & {"OnCalendar", "OnUnitActiveSec"}
    command = service["Service"]["ExecStart"].split()
    assert command[:3] == ["/opt/portal/.venv/bin/flask", "--app", "portal"]
    result = runner.invoke(args=[*command[3:], "--help"])
    assert result.exit_code == 0, result.output
