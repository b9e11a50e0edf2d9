"""The SIP benchmark's machinery (mobilityd.bench.sip) on a small SIPp load: the bare
floor responder and our UAS both complete every call, and the SIPp statistics and the
server CPU time are read. No timing assertions: the figures come from the script."""

from __future__ import annotations

from pathlib import Path

import pytest

from mobilityd.bench import sip as bench

from .peers import require_tool

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("role", ["floor", "uas"])
def test_small_load_completes_every_call(role: str, tmp_path: Path) -> None:
    require_tool("sipp", "sip-tester")
    with bench.server_process(role) as (process, port):
        result = bench.run_sipp(port, process.pid, rate=50, seconds=1.0, workdir=tmp_path)
    assert result.calls == 50
    assert result.successful == 50 and result.failed == 0
    assert result.server_cpu_s > 0
    assert result.cpu_us_per_call > 0
    # the kernel's part (stime) is part of the whole (utime + stime)
    assert 0 <= result.server_system_s <= result.server_cpu_s
    assert 0 <= result.system_us_per_call <= result.cpu_us_per_call
    # SIPp's 100 ms statistics rows give the calls completed while the load ran
    assert result.window_s == 1.0
    assert 0 <= result.window_successful <= 50


def test_successful_at_interpolates_between_statistics_rows() -> None:
    rows = [{"StartTime": "2026-11-27\t08:00:00\t100.0", "CurrentTime": f"x\t{t}",
             "SuccessfulCall(C)": str(n)} for t, n in ((100.0, 0), (100.5, 40), (101.0, 90))]
    assert bench.successful_at(rows, 0.25) == 20
    assert bench.successful_at(rows, 0.75) == 65
    assert bench.successful_at(rows, 1.0) == 90
    assert bench.successful_at(rows, 2.0) == -1  # past the last row: unknown
    assert bench.successful_at([], 1.0) == -1


def test_sustained_needs_all_calls_and_no_lag() -> None:
    done = bench.LoadResult(rate=100, calls=100, successful=100, failed=0,
                            retransmissions=0, elapsed_s=1.1, server_cpu_s=0.1,
                            window_successful=97, window_s=1.0)
    assert bench.sustained(done, 1.0)
    assert not bench.sustained(bench.LoadResult(**{**done.__dict__, "failed": 1}), 1.0)
    assert not bench.sustained(bench.LoadResult(**{**done.__dict__, "successful": 99}), 1.0)
    assert not bench.sustained(bench.LoadResult(**{**done.__dict__, "elapsed_s": 9.0}), 1.0)
    lagging = bench.LoadResult(**{**done.__dict__, "retransmissions": 50})
    assert not bench.sustained(lagging, 1.0)
    # finished in time with no retransmission, but only 75 % of the offered rate was
    # completed while it was offered: the server did not keep up
    behind = bench.LoadResult(**{**done.__dict__, "window_successful": 75})
    assert not bench.sustained(behind, 1.0)
    assert behind.goodput_per_s == 75.0 and behind.completed_per_s == 100 / 1.1


def test_rounds_compare_sustained_overload_and_floor_in_turn(tmp_path: Path) -> None:
    """Each round runs our UAS at the rate again, at 1.5x it, and the floor at it; the
    stepping run that found the rate is the first sustained sample."""
    require_tool("sipp", "sip-tester")
    with bench.server_process("uas") as (process, port):
        found = bench.run_sipp(port, process.pid, rate=40, seconds=1.0, workdir=tmp_path)
    sustained, overload, floor = bench.compare_at_rate(found, 2, 1.0, tmp_path)
    assert sustained[0] is found and len(sustained) == len(overload) == len(floor) == 2
    assert [r.rate for r in overload] == [60, 60] and [r.rate for r in floor] == [40, 40]
    assert all(r.successful == r.calls and r.failed == 0
               for r in (*sustained, *overload, *floor))


def test_median_of_figures() -> None:
    assert bench._median([]) is None
    assert bench._median([3000.04, 2900.0, 3100.0]) == 3000.0
    assert bench._median([0.98, 1.02]) == 1.0


def test_targets_verdict_of_a_run_on_a_slow_host() -> None:
    # the figures of the quick run of 2026-11-27 13:41 (this machine in its slow state)
    result = {"invite_parse_serialize_us": 18.51, "uas_calls_per_s": 3000,
              "uas_failed_calls": 0, "uas_cpu_us_per_call": 306.7,
              "floor_at_uas_rate_cpu_us_per_call": 222.2, "overload_vs_sustained": 0.993}
    verdict = bench.targets(result)
    assert verdict["parse_serialize_met"] is True
    assert verdict["calls_per_s_met"] is False
    assert verdict["uas_failed_calls_met"] is True
    assert verdict["cpu_per_call_met"] is False
    assert verdict["overload_met"] is False  # 0.993 < 1: below the sustained goodput
    assert verdict["floor_within_cpu_target"] is False  # the host, not our code
    assert verdict["cpu_vs_floor_at_same_rate"] == 1.38
    assert verdict["cpu_vs_floor_allowed"] == 2.08  # 150 µs over the 72 µs floor


def test_targets_verdict_when_met_and_when_not_measured() -> None:
    met = bench.targets({"invite_parse_serialize_us": 20.0, "uas_calls_per_s": 5000,
                         "uas_failed_calls": 0, "uas_cpu_us_per_call": 140.0,
                         "floor_at_uas_rate_cpu_us_per_call": 70.0,
                         "overload_vs_sustained": 1.0})
    assert all(met[key] for key in ("parse_serialize_met", "calls_per_s_met",
                                     "uas_failed_calls_met", "cpu_per_call_met",
                                     "overload_met", "floor_within_cpu_target"))
    unknown = bench.targets({"uas_calls_per_s": 0, "uas_failed_calls": None,
                             "uas_cpu_us_per_call": None})
    assert unknown["calls_per_s_met"] is False  # nothing sustained at all
    assert unknown["cpu_per_call_met"] is None and unknown["overload_met"] is None
    assert unknown["uas_failed_calls_met"] is None
    assert unknown["cpu_vs_floor_at_same_rate"] is None
