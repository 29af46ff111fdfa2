"""The suite allows no skips: a skipped or xfailed test makes the run fail (tests/no_skips.py)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_pytest(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_sample.py").write_text("import pytest\n\n" + body)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.no_skips", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), str(tmp_path / "test_sample.py")],
        cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_a_skipped_test_fails_the_run(tmp_path):
    result = run_pytest(tmp_path, "def test_ok():\n    pass\n\n"
                                  "def test_later():\n    pytest.skip('no chromedriver')\n")
    assert result.returncode == 1, result.stdout
    assert "the suite allows no skips" in result.stdout and "test_later (skipped)" in result.stdout


def test_an_xfailed_test_and_a_skipped_module_fail_the_run(tmp_path):
    result = run_pytest(tmp_path, "@pytest.mark.xfail\ndef test_broken():\n    assert False\n")
    assert result.returncode == 1 and "test_broken (xfailed)" in result.stdout
    result = run_pytest(tmp_path, "pytest.importorskip('no_such_module_here')\n\ndef test_x():\n    pass\n")
    assert result.returncode == 1 and "the suite allows no skips" in result.stdout


def test_a_run_without_skips_passes(tmp_path):
    result = run_pytest(tmp_path, "def test_ok():\n    pass\n")
    assert result.returncode == 0, result.stdout
