"""``mobilityd.sip.perf.bench_parse_after_idle`` (the host's cold-code figure the
handover benchmark reports): both medians are measured over the samples asked for and
the ratio is theirs. No timing assertions: the host decides the figures."""

from __future__ import annotations

from mobilityd.sip.perf import bench_parse_after_idle


def test_hot_and_after_idle_medians_and_their_ratio() -> None:
    figures = bench_parse_after_idle(idle_s=0.001, samples=5, hot=40)
    assert set(figures) == {"hot_us", "after_idle_us", "idle_ms", "cold_factor"}
    assert figures["hot_us"] > 0 and figures["after_idle_us"] > 0
    assert figures["idle_ms"] == 1.0
    ratio = figures["after_idle_us"] / figures["hot_us"]
    assert abs(figures["cold_factor"] - ratio) <= 0.01 * ratio + 0.01
