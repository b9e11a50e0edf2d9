"""The handover benchmark's ``--ptime`` option and the per-row ``targets`` verdict
(``mobilityd.bench.handover``; issue 5's limits: detection < 5 ms, gap at Bob within
RTT + 15 ms median and RTT + 40 ms p95, no SRTP authentication failure)."""

from __future__ import annotations

import argparse

import pytest

from mobilityd.bench.handover import _ptimes, _targets


def test_ptime_list_is_parsed() -> None:
    assert _ptimes("20") == (20,)
    assert _ptimes("20,10") == (20, 10)


@pytest.mark.parametrize("text", ["", "20,", "ten", "2.5", "5", "121", "20,0"])
def test_bad_ptime_is_refused_with_its_value(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        _ptimes(text)
    assert "ptime" in str(refused.value) or "milliseconds" in str(refused.value)


def test_ptime_option_reaches_argparse_as_a_clear_error(capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    from mobilityd.bench import handover

    with pytest.raises(SystemExit) as stopped:
        handover.main(["--ptime", "7"])
    assert stopped.value.code == 2
    assert "ptime 7 ms outside 10..120" in capsys.readouterr().err


def test_targets_follow_the_rtt() -> None:
    verdict = _targets(20, 1.1, 34.9, 50.0, 0)
    assert verdict == {
        "detection_ms_below": 5.0, "detection_met": True,
        "gap_moving_ms_median_max": 35.0, "gap_median_met": True,
        "gap_moving_ms_p95_max": 60.0, "gap_p95_met": True,
        "srtp_auth_failures_met": True}


def test_targets_report_each_miss() -> None:
    verdict = _targets(0, 5.0, 21.4, 40.1, 3)
    assert verdict["detection_met"] is False  # "under 5 ms" is strict
    assert verdict["gap_median_met"] is False  # 21.4 > 0 + 15
    assert verdict["gap_p95_met"] is False  # 40.1 > 0 + 40
    assert verdict["srtp_auth_failures_met"] is False


def test_targets_unknown_when_nothing_was_measured() -> None:
    verdict = _targets(100, None, None, None, 0)
    assert verdict["detection_met"] is None
    assert verdict["gap_median_met"] is None and verdict["gap_p95_met"] is None
