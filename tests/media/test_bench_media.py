"""The media benchmark runs and prints the documented JSON (no timing assertions)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from mobilityd.bench import media
from mobilityd.bench.media_load import Generator, call_keys
from mobilityd.media.endpoint import MediaEndpoint
from mobilityd.media.srtp import Direction, SrtpSession


def test_percentile_and_keys() -> None:
    assert media.percentile([], 99) == 0.0
    assert media.percentile([1.0, 2.0, 3.0], 50) == 2.0
    assert media.percentile([float(n) for n in range(101)], 99) == 99.0
    assert call_keys(1) == call_keys(1) != call_keys(2)


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


async def test_load_generator_sends_prebuilt_srtp_that_endpoints_decrypt() -> None:
    """The generator process (media_load) protects ahead, reports its source, and its
    packets authenticate at endpoints keyed per call (RFC 3711 §3.3); a phase longer
    than the pre-built packets goes on with on-the-fly protection, indices still new."""
    endpoints = []
    generator = await media.LoadGenerator.start(calls=2, packets_per_call=20, core=1)
    try:
        assert generator.prebuilt == 40
        for call in range(2):
            endpoint = MediaEndpoint(
                "127.0.0.1", tx=None,
                rx=SrtpSession(call_keys(call), Direction.INBOUND),
                remote_rtp=generator.source, rtcp_mux=True,
            )
            await endpoint.open()
            endpoints.append(endpoint)
        sending = asyncio.create_task(generator.send([e.local_rtp[1] for e in endpoints], 0.3))
        while not sending.done():  # receive while it sends (the sockets' buffers are small)
            await asyncio.sleep(0.01)
        report = sending.result()
        await asyncio.sleep(0.05)
    finally:
        await generator.close()
        for endpoint in endpoints:
            endpoint.close()
    assert report["prebuilt_sent"] == 40 and report["on_the_fly_sent"] > 0
    assert report["sent"] == 40 + report["on_the_fly_sent"] and report["errors"] == 0
    for endpoint in endpoints:
        counters = endpoint.counters
        assert counters.rtp_received > 20
        assert counters.auth_failures == counters.replays == counters.malformed == 0
        assert counters.unconfirmed_source == 0  # the generator is the call's remote


def test_load_generator_refuses_a_wrong_port_count() -> None:
    generator = Generator(calls=2, packets_per_call=1, host="127.0.0.1")
    try:
        with pytest.raises(ValueError, match="1 ports for 2 calls"):
            generator.run([9], 0.01)
    finally:
        generator.sock.close()
