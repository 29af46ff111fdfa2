""".ci/system-packages: what `make run` and `make test` need from Debian, installed or named."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / ".ci" / "system-packages"


def run(*args: str, env: dict, user: str | None = None) -> subprocess.CompletedProcess:
    command = [shutil.which("bash"), str(SCRIPT), *args]
    if user:
        command = ["runuser", "-u", user, "--", "env", *(f"{k}={v}" for k, v in env.items()), *command]
        env = None
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, cwd="/")


def test_this_machine_has_everything_the_suite_drives():
    result = run("test", env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # nothing to install, nothing said


def test_without_root_the_missing_packages_are_named_in_one_line(tmp_path):
    # A Python that cannot make a virtualenv (Debian's python3 without python3-venv), no .venv yet.
    env = {"PATH": "/usr/bin:/bin", "PYTHON": "/bin/false", "VENV": str(tmp_path / "no-venv")}
    result = run("run", env=env, user="nobody")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("make run needs these Debian packages, which are missing: python3-venv")
    assert "apt-get install --no-install-recommends python3-venv" in result.stderr


def test_without_apt_get_root_is_told_the_same(tmp_path):
    bin_dir = tmp_path / "bin"  # a PATH with the script's tools but no apt-get
    bin_dir.mkdir()
    for tool in ("dirname", "id"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    env = {"PATH": str(bin_dir), "PYTHON": "/bin/false", "VENV": str(tmp_path / "no-venv")}
    result = run("run", env=env)
    assert result.returncode == 1
    assert "missing: python3-venv" in result.stderr and result.stderr.count("\n") == 1


def test_a_virtualenv_already_made_needs_no_python3_venv(tmp_path):
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "python").symlink_to("/bin/true")
    env = {"PATH": "/usr/bin:/bin", "PYTHON": "/bin/false", "VENV": str(tmp_path / "venv")}
    assert run("run", env=env).returncode == 0
