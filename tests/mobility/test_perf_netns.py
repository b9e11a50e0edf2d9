"""The move-decision measurement used by the handover benchmark (prints, never asserts
speed)."""

from __future__ import annotations

import os
import statistics
import subprocess

import pytest

from mobilityd.mobility.perf import measure_move_decision
from mobilityd.net.perf import PerfSetupError

pytestmark = pytest.mark.netns


def namespaces() -> set[str]:
    """This process's namespaces only: other test runs on the machine come and go."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                         check=True).stdout
    mine = f"mdmv{os.getpid()}n"
    return {name for line in out.splitlines() if line.strip()
            if (name := line.split()[0]).startswith(mine)}


def test_measure_move_decision() -> None:
    before = namespaces()
    values = measure_move_decision(3)
    assert len(values) == 3 and all(v >= 0 for v in values)
    assert namespaces() == before
    print(f"\nlink down -> move decided: median {statistics.median(values):.3f} ms")
    with pytest.raises(PerfSetupError):
        measure_move_decision(0)
