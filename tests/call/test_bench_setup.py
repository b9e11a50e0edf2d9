"""The call-setup benchmark (thesis Appendix B definitions): its reduction of raw
per-call delays and a short real run between two namespace hosts. No timing asserts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mobilityd.bench import setup

REPO = Path(__file__).resolve().parents[2]


def _raw(calling: list[float], answering: list[float]) -> dict[str, object]:
    ids = [f"call-{n}" for n in range(len(calling))]
    return {
        "caller": {"calling_ms": [[i, ms, ms / 2] for i, ms in zip(ids, calling, strict=True)],
                   "failures": [], "dh_pool_misses": 0},
        "callee": {"answering_ms": {i: [ms, 1.0] for i, ms in zip(ids, answering, strict=True)},
                   "failures": [], "dh_pool_misses": 0},
    }


def test_summary_drops_warmup_calls_at_both_ends() -> None:
    calling = [500.0] * setup.WARMUP + [float(n) for n in range(1, 21)]
    answering = [900.0] * setup.WARMUP + [float(n) / 2 for n in range(1, 21)]
    row = setup.summarise("psk", _raw(calling, answering))
    assert row["calls"] == 20
    assert row["calling_ms_median"] == 10.5 and row["calling_ms_p95"] == 19.0
    assert row["answering_ms_median"] == 5.25 and row["answering_ms_p95"] == 9.5
    assert row["calling_local_ms_median"] == 5.25 and row["answering_local_ms_median"] == 1.0
    assert row["failures"] == []


def test_headline_ratios_and_targets() -> None:
    rows = [
        {"mode": "none", "calling_ms_median": 4.0, "answering_ms_median": 2.0},
        {"mode": "psk", "calling_ms_median": 5.0, "answering_ms_median": 2.5},
        {"mode": "dh-precomputed", "calling_ms_median": 24.0, "answering_ms_median": 3.0},
    ]
    head = setup.headline(rows)
    assert head["psk_calling_ratio"] == 1.25 and head["psk_answering_added_ms"] == 0.5
    assert head["psk_target_met"] is True
    assert head["dh-precomputed_calling_added_ms"] == 20.0
    assert head["dh-precomputed_target_met"] is False  # 20 ms added >= 15 ms


def test_cpu_added_sums_the_steps_on_each_path() -> None:
    none = {"make_offer": 0.1, "screen_offer": 0.05, "complete_offer": 0.05,
            "receive_offer": 0.1, "build_answer": 0.1, "srtp_sessions": 0.0,
            "receive_answer": 0.1}
    # the MIKEY Responder (complete_offer) and srtp_sessions run after the 180, while it
    # rings; receive_answer after the ACK: on no path
    psk = {"make_offer": 0.9, "screen_offer": 0.05, "complete_offer": 1.05,
           "receive_offer": 1.1, "build_answer": 0.2, "srtp_sessions": 0.9,
           "receive_answer": 9.0}
    added = setup.cpu_added({"none": none, "psk": psk})
    assert added["psk_calling_cpu_added_ms"] == 0.8
    assert added["psk_calling_with_responder_cpu_added_ms"] == 1.8  # the old path
    assert added["psk_answering_cpu_added_ms"] == 0.1
    assert added["psk_cpu_target_met"] is True
    off_path = ("srtp_sessions", "complete_offer", "receive_answer")
    assert not set(off_path) & set(setup.CALLING_PATH + setup.ANSWERING_PATH)


def test_table_has_the_thesis_shape_and_numbers() -> None:
    row = {"mode": "dh", "calling_ms_median": 12.0, "calling_ms_p95": 20.0,
           "answering_ms_median": 3.0, "answering_ms_p95": 4.0, "calls": 10}
    text = setup.render_table({"hosts": "x", "rows": [row], "headline": {},
                               "phases_cpu_ms_median": {}})
    assert "175" in text and "160-310" in text and "12.00 [20.00]" in text


@pytest.mark.netns
def test_short_run_between_namespace_hosts() -> None:
    """Three counted calls each in modes none and psk: every call measured at both ends,
    no failures, the JSON shape of the issue."""
    result = subprocess.run(
        [sys.executable, "-m", "mobilityd.bench", "setup", "--json", "--calls", "3",
         "--modes", "none,psk"],
        capture_output=True, text=True, timeout=180, cwd=REPO, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["hosts"].startswith("network namespaces")
    assert report["scheduling"] == "normal"
    assert [row["mode"] for row in report["rows"]] == ["none", "psk"]
    for row in report["rows"]:
        assert row["calls"] == 3 and row["failures"] == []
        for key in ("calling_ms_median", "calling_ms_p95", "answering_ms_median",
                    "answering_ms_p95"):
            assert row[key] > 0
    assert report["thesis"]["psk"] == {"calling_ms": 90, "answering_ms": 25}
    assert "psk_calling_ratio" in report["headline"]
    assert set(report["phases_cpu_ms_median"]["psk"]) == {
        "make_offer", "screen_offer", "complete_offer", "receive_offer", "build_answer",
        "srtp_sessions", "receive_answer"}


@pytest.mark.netns
def test_realtime_run_says_so_and_measures_the_same_calls() -> None:
    """--realtime: the workers under SCHED_FIFO (chrt); same rows, same checks."""
    result = subprocess.run(
        [sys.executable, "-m", "mobilityd.bench", "setup", "--json", "--calls", "2",
         "--modes", "none,psk", "--realtime"],
        capture_output=True, text=True, timeout=180, cwd=REPO, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["scheduling"].startswith("SCHED_FIFO")
    for row in report["rows"]:
        assert row["calls"] == 2 and row["failures"] == [] and row["calling_ms_median"] > 0


@pytest.mark.netns
@pytest.mark.interop
@pytest.mark.slow
def test_short_run_through_kamailio_proxies() -> None:
    """The thesis's path: each side's SIP proxy (Kamailio) between the agents."""
    result = subprocess.run(
        [sys.executable, "-m", "mobilityd.bench", "setup", "--json", "--calls", "2",
         "--modes", "none,psk", "--proxy"],
        capture_output=True, text=True, timeout=180, cwd=REPO, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["sip_path"].startswith("via Kamailio")
    for row in report["rows"]:
        assert row["calls"] == 2 and row["failures"] == []
