"""The UAS micro-benchmark's machinery (mobilityd.sip.perf_ua) on a few calls: every
call completes and every stage and syscall figure is measured. No timing assertions:
the figures come from ``python -m mobilityd.sip.perf_ua``."""

from __future__ import annotations

from mobilityd.sip import perf_ua


def test_a_few_calls_complete_and_every_stage_is_measured() -> None:
    assert perf_ua.bench_uas_calls(20) > 0
    stages = perf_ua.bench_uas_stages(20)
    assert set(stages) == {"parse_invite", "engine_invite", "engine_answer", "parse_ack",
                           "engine_ack", "parse_bye", "engine_bye", "engine_timers_events"}
    assert all(value >= 0 for value in stages.values())
    assert sum(stages.values()) > 0
    work = perf_ua.bench_work_counts(5)
    assert work["bytecodes"] > work["python_calls"] > 0 and work["c_calls"] > 0
    per_call, collector = perf_ua.bench_endpoint_calls(20)
    assert per_call > 0 and collector >= 0
    syscalls = perf_ua.bench_udp_syscalls(20)
    assert syscalls["sendto"] > 0 and syscalls["recvfrom"] > 0
