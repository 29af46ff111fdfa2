"""A pytest plugin: any skipped or xfailed test fails the run.

The suite runs on real parts (Redis, Chromium, FreeRADIUS); a test that cannot run must say so
by failing, never pass unseen as a skip. Loaded for the whole suite by the top-level conftest.py.
"""
from __future__ import annotations

import pytest

_skipped: list[str] = []


def _record(report) -> None:
    if report.skipped:
        kind = "xfailed" if hasattr(report, "wasxfail") else "skipped"
        _skipped.append(f"{report.nodeid} ({kind})")


def pytest_runtest_logreport(report) -> None:
    """Remember every test that was skipped or xfailed, in any phase."""
    _record(report)


def pytest_collectreport(report) -> None:
    """Remember whole modules skipped at collection (pytest.importorskip, module-level skip)."""
    _record(report)


def pytest_sessionfinish(session, exitstatus) -> None:
    """Fail a run that otherwise passed but left tests out."""
    if _skipped and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter) -> None:
    """Name what was left out, so the failure says what to fix."""
    if _skipped:
        terminalreporter.write_line(
            f"FAILED: {len(_skipped)} test(s) did not run; the suite allows no skips: " + ", ".join(_skipped),
            red=True)
