"""``mobilityd demo`` end to end (issue 7): three daemons in namespaces, a secure call,
Wi-Fi roaming, a move to the PDA and back, hang-up; exit code, summary and PNG checked.

The demo checks the SRTP evidence itself (same sessions and SSRCs, packet index running
on, zero authentication failures, RFC 3711 §3.2-3.3.1) and exits 1 when one fails;
this test also reads the summary and the PNG it wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.service.test_demo_png import read_png

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def run_demo(out: Path, *prefix: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "mobilityd", "demo", "--out",
                           str(out)], capture_output=True, text=True, timeout=300,
                          env=ENV, cwd=out.parent, check=False)


@pytest.mark.netns
def test_demo_runs_every_step_and_passes_its_checks(tmp_path: Path) -> None:
    out = tmp_path / "demo-out"
    done = run_demo(out)
    summary = (out / "summary.txt").read_text()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "checks: all passed" in done.stdout and "checks: all passed" in summary
    facts = json.loads((out / "summary.json").read_text())
    assert facts["ok"] is True and len(facts["steps"]) == 7
    assert [m["kind"] for m in facts["moves"]["correspondent"]].count("transfer") == 2
    for step in ("place a secure call", "roam the laptop: Wi-Fi A", "roam the laptop back",
                 "move the call to the PDA", "pull it back to the laptop", "hang up"):
        assert f"{step}" in summary
    assert "FAILED" not in summary
    assert "gap" in done.stdout and "same context: True" in done.stdout
    assert "same context: False" not in done.stdout
    for lane in ("ALICE", "BOB LAPTOP", "BOB PDA"):
        assert f"lane {lane}: " in summary
    width, height, _ = read_png((out / "timeline.png").read_bytes())
    assert width > 1000 and height > 300  # three lanes
    for role in ("correspondent", "laptop", "pda"):
        assert (out / f"{role}.log").stat().st_size > 0


# Without root: tests/service/test_demo_userns.py (the demo runs in a user namespace).
