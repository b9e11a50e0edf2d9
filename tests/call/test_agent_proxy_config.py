"""AgentConfig.outbound_proxy and sip_timers reach the SIP core (issue 5 re-routing):
the UA re-routes only when a proxy is configured, the re-INVITE wait covers both
attempts (RFC 3261 §17.1.1.2 Timer B), a bad proxy URI is a local error. Loopback."""

from __future__ import annotations

import pytest

from mobilityd.call.agent import AgentConfig, CallAgent, reinvite_wait
from mobilityd.call.errors import CallUsageError
from mobilityd.sip.timers import TimerConfig

A = "sip:alice@a.test"
FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


async def test_proxy_turns_rerouting_on_and_sizes_the_wait() -> None:
    agent = CallAgent(AgentConfig(A, "127.0.0.1", 0, outbound_proxy="sip:127.0.0.1:5999",
                                  sip_timers=FAST))
    await agent.start()
    try:
        ua = agent.sip.ua.config
        assert ua.reroute_via_proxy is True and ua.timers == FAST
        assert ua.outbound_proxy is not None and ua.outbound_proxy.port == 5999
        assert agent.reinvite_timeout == pytest.approx(2 * 64 * 0.05 + 0.5)
    finally:
        await agent.close()


async def test_without_a_proxy_plain_rfc3261_and_one_timer_b() -> None:
    agent = CallAgent(AgentConfig(A, "127.0.0.1", 0))
    await agent.start()
    try:
        assert agent.sip.ua.config.reroute_via_proxy is False
        assert agent.reinvite_timeout == reinvite_wait(TimerConfig(), False) == 37.0
    finally:
        await agent.close()


async def test_bad_proxy_uri_is_a_local_error() -> None:
    agent = CallAgent(AgentConfig(A, "127.0.0.1", 0, outbound_proxy="http://proxy"))
    with pytest.raises(CallUsageError, match="outbound proxy"):
        await agent.start()
