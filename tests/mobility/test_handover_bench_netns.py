"""``python -m mobilityd.bench handover --json --quick --moves 1`` runs on the test
hosts and prints the issue 5 JSON shape (figures are printed, never asserted on
time; correctness counters are)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.netns, pytest.mark.slow]  # ~35 s: slow tier
REPO = Path(__file__).resolve().parents[2]
KEYS = {"scenario", "rtt_ms", "moves", "detection_ms_median", "detection_window_ms_median",
        "detection_ip_start_ms_median", "gap_moving_ms_median",
        "gap_moving_ms_p95", "gap_peer_ms_median", "reinvite_ms_median",
        "srtp_auth_failures", "index_reuse", "gap_moving_ms_each", "phase_ms_median",
        "resume_ms_median", "resume_ms_each", "frames_lost_moving_median",
        "frames_lost_moving_total", "ptime_ms", "targets"}
TARGET_KEYS = {"detection_ms_below", "detection_met", "gap_moving_ms_median_max",
               "gap_median_met", "gap_moving_ms_p95_max", "gap_p95_met",
               "srtp_auth_failures_met"}


def test_quick_handover_benchmark_prints_its_json() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mobilityd.bench", "handover", "--json", "--quick",
         "--moves", "1"], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    runs = report["runs"]
    assert [(r["scenario"], r["rtt_ms"]) for r in runs] == [("eth_unplugged", 0),
                                                            ("eth_unplugged", 20)]
    for run in runs:
        assert set(run) == KEYS
        assert run["moves"] == 1
        assert run["ptime_ms"] == 20  # --quick measures G.711's default packet time
        targets = run["targets"]
        assert set(targets) == TARGET_KEYS
        assert targets["gap_moving_ms_median_max"] == run["rtt_ms"] + 15
        assert targets["gap_moving_ms_p95_max"] == run["rtt_ms"] + 40
        assert targets["gap_median_met"] == (run["gap_moving_ms_median"]
                                             <= run["rtt_ms"] + 15)
        assert targets["srtp_auth_failures_met"] is True
        # one move: made through rtnetlink (even moves), so the ip-start figure is empty
        assert run["detection_ms_median"] is not None
        assert run["detection_ip_start_ms_median"] is None
        assert run["srtp_auth_failures"] == 0 and run["index_reuse"] == 0
        # the gap at Bob is its phase plus the resumption (module doc of the bench)
        assert len(run["resume_ms_each"]) == 1
        assert abs(run["resume_ms_each"][0] - run["resume_ms_median"]) < 0.06
        assert abs(run["gap_moving_ms_median"]
                   - (run["phase_ms_median"] + run["resume_ms_median"])) < 0.02
        assert 0 <= run["phase_ms_median"] <= run["gap_moving_ms_median"]
        assert run["frames_lost_moving_total"] >= 0
        assert run["frames_lost_moving_median"] == run["frames_lost_moving_total"]
    host = report["host_invite_parse"]  # this host's cold-code figure (bench doc)
    assert set(host) == {"hot_us", "after_idle_us", "idle_ms", "cold_factor"}
    assert host["hot_us"] > 0 and host["after_idle_us"] > 0 and host["idle_ms"] == 20
    print("\n" + json.dumps(runs, indent=1))


def test_handover_benchmark_measures_the_packet_time_it_is_given() -> None:
    """``--ptime 10``: both parties send a frame every 10 ms (a=ptime:10); the row says
    so and the move still costs nothing in SRTP terms."""
    result = subprocess.run(
        [sys.executable, "-m", "mobilityd.bench", "handover", "--json", "--quick",
         "--moves", "1", "--ptime", "10"], cwd=REPO, capture_output=True, text=True,
        timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = json.loads(result.stdout.strip().splitlines()[-1])["runs"]
    assert [(r["ptime_ms"], r["rtt_ms"]) for r in runs] == [(10, 0), (10, 20)]
    for run in runs:
        assert run["srtp_auth_failures"] == 0 and run["index_reuse"] == 0
        # the phase is measured against a 10 ms frame clock (plus scheduling slack)
        assert 0 <= run["phase_ms_median"] < 10 + 5
