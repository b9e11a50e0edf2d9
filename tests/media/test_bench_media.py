"""The media benchmark runs and prints the documented JSON (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mobilityd.bench import media


def test_percentile_and_keys() -> None:
    assert media.percentile([], 99) == 0.0
    assert media.percentile([1.0, 2.0, 3.0], 50) == 2.0
    assert media.percentile([float(n) for n in range(101)], 99) == 99.0
    assert media.call_keys(1) == media.call_keys(1) != media.call_keys(2)


@pytest.mark.slow
def test_quick_run_prints_json() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mobilityd.bench", "media", "--json", "--quick"],
        capture_output=True, text=True, timeout=180, check=True,
    )
    report = json.loads(result.stdout)
    for key in ("srtp_pps", "floor_pps", "concurrent_calls", "pacing_jitter_ms_p99"):
        assert key in report
    assert report["concurrent_calls"] == 100
    assert report["srtp_auth_failures"] == 0
    assert report["srtp_pps"] > 0 and report["floor_pps"] > 0
