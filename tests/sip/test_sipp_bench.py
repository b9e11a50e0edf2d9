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
