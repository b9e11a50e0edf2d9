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


def test_sustained_needs_all_calls_and_no_lag() -> None:
    done = bench.LoadResult(rate=100, calls=100, successful=100, failed=0,
                            retransmissions=0, elapsed_s=1.1, server_cpu_s=0.1)
    assert bench.sustained(done, 1.0)
    assert not bench.sustained(bench.LoadResult(**{**done.__dict__, "failed": 1}), 1.0)
    assert not bench.sustained(bench.LoadResult(**{**done.__dict__, "successful": 99}), 1.0)
    assert not bench.sustained(bench.LoadResult(**{**done.__dict__, "elapsed_s": 9.0}), 1.0)
    lagging = bench.LoadResult(**{**done.__dict__, "retransmissions": 50})
    assert not bench.sustained(lagging, 1.0)
