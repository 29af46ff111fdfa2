"""`make failover-test`, shorter: 2 nodes behind nginx on Sentinel, primary and a node SIGKILLed under load.

Part of the default run (about half a minute): it is the only test of nginx in front of several
nodes, of the per-node spool replayed after a node comes back, and of one delivery per complaint
whichever node took it. `make failover-test` is the same harness with more phones for longer.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.failover
ROOT = Path(__file__).resolve().parent.parent


def test_a_short_failover_run_ends_with_every_receipt_delivered_once():
    env = dict(os.environ, FAILOVER_SECONDS="16", FAILOVER_PHONES="4", FAILOVER_DRAIN_LIMIT="90")
    result = subprocess.run([sys.executable, "-m", "tests.ha.failover"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "FAILOVER OK" in result.stdout
    assert ", 0 twice, 0 never, 0 unknown" in result.stdout
    assert "0 without an answer" in result.stdout
