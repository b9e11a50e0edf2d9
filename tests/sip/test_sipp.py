"""SIPp (Debian sip-tester) drives our UAC and UAS over UDP on loopback: plain calls
both ways, re-INVITE with a changed Contact and SDP, REFER with NOTIFY, CANCEL, 491
glare, and 20 % loss (SIPp ``-lost 20``) that our retransmissions must absorb."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from mobilityd.sip import events as ev
from mobilityd.sip.endpoint import SipEndpoint
from mobilityd.sip.transport import TransportKind
from mobilityd.sip.uri import NameAddr, SipUri
from mobilityd.sip.useragent import UaConfig, UserAgent

from .peers import Sipp, SippResult, sipp

pytestmark = pytest.mark.interop

#: How long a test waits for SIPp to finish once our side is done (then it is killed).
SIPP_WAIT_LIMIT = 120.0
SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       b"m=audio 40000 RTP/AVP 0\r\n")

Action = Callable[[UserAgent, float], None]


def answering(call_id: str, status: int = 200) -> Action:
    """``answer_call`` (with our SDP on a 2xx) as an ``act`` action."""
    def action(ua: UserAgent, now: float) -> None:
        ua.answer_call(call_id, now, status, body=SDP if status >= 200 else b"")
    return action


def accepting_reinvite(call_id: str) -> Action:
    def action(ua: UserAgent, now: float) -> None:
        ua.accept_reinvite(call_id, now, body=SDP)
    return action


def hanging_up(call_id: str) -> Action:
    def action(ua: UserAgent, now: float) -> None:
        ua.hangup(call_id, now)
    return action



class Application:
    """Our side's behaviour: answer (or only ring), accept re-INVITEs and hang up when
    the remote target moved; every event is kept for the assertions."""

    def __init__(self, endpoint: SipEndpoint, *, ring_only: bool = False,
                 hangup_on_refresh: bool = False) -> None:
        self.endpoint = endpoint
        self.ring_only = ring_only
        self.hangup_on_refresh = hangup_on_refresh
        self.history: list[object] = []

    async def run(self) -> None:
        endpoint = self.endpoint
        while True:
            event = await endpoint.events.get()
            self.history.append(event)
            if isinstance(event, ev.IncomingCallReceived):
                endpoint.act(answering(event.call_id, 180 if self.ring_only else 200))
            elif isinstance(event, ev.ReinviteReceived):
                endpoint.act(accepting_reinvite(event.call_id))
            elif isinstance(event, ev.RemoteTargetRefreshed) and self.hangup_on_refresh:
                endpoint.act(hanging_up(event.call_id))

    def of_type(self, kind: type) -> list[object]:
        return [e for e in self.history if isinstance(e, kind)]


@pytest.fixture
async def endpoint() -> AsyncIterator[SipEndpoint]:
    config = UaConfig(local_uri=NameAddr.parse("<sip:ours@127.0.0.1>"), host="127.0.0.1",
                      port=0, transport=TransportKind.UDP, contact_user="ours")
    opened = await SipEndpoint.open(config, os.urandom)
    yield opened
    await opened.close()


async def serve(endpoint: SipEndpoint, **behaviour: bool) -> tuple[Application,
                                                                   asyncio.Task[None]]:
    application = Application(endpoint, **behaviour)
    return application, asyncio.create_task(application.run())


def assert_all_successful(result: SippResult, calls: int) -> None:
    detail = f"{result.screen[-1500:]}\n{result.errors[-1500:]}"
    assert result.returncode == 0, detail
    assert result.last("SuccessfulCall(C)") == calls, detail
    assert result.last("FailedCall(C)") == 0, detail


async def test_sipp_uac_calls_our_uas(endpoint: SipEndpoint, tmp_path: Path) -> None:
    application, task = await serve(endpoint)
    try:
        async with sipp(tmp_path, endpoint.local_address, scenario="uac", calls=5,
                        rate=10) as peer:
            result = await peer.wait()
        assert_all_successful(result, 5)
        assert len(application.of_type(ev.CallEnded)) == 5
    finally:
        task.cancel()


async def test_our_uac_calls_sipp_uas(endpoint: SipEndpoint, tmp_path: Path) -> None:
    async with sipp(tmp_path, None, scenario="uas", calls=1) as peer:
        call_id = endpoint.act(lambda ua, now: ua.invite(_sipp_uri(peer), now, body=SDP))
        established = await endpoint.next_event(ev.CallEstablished)
        assert isinstance(established, ev.CallEstablished)
        assert established.call_id == call_id
        endpoint.act(lambda ua, now: ua.hangup(call_id, now))
        assert isinstance(await endpoint.next_event(ev.CallEnded), ev.CallEnded)
        assert_all_successful(await peer.wait(), 1)


async def test_reinvite_with_new_contact_moves_our_remote_target(
        endpoint: SipEndpoint, tmp_path: Path) -> None:
    application, task = await serve(endpoint, hangup_on_refresh=True)
    try:
        async with sipp(tmp_path, endpoint.local_address,
                        scenario="reinvite_contact_uac.xml", calls=1) as peer:
            result = await peer.wait()
        assert_all_successful(result, 1)  # SIPp checked "BYE sip:moved@"
        (refreshed,) = application.of_type(ev.RemoteTargetRefreshed)
        assert isinstance(refreshed, ev.RemoteTargetRefreshed)
        assert refreshed.new.user == "moved"
    finally:
        task.cancel()


async def test_refer_gets_202_and_sipfrag_notifies(endpoint: SipEndpoint,
                                                   tmp_path: Path) -> None:
    async with sipp(tmp_path, None, scenario="refer_notify_uas.xml", calls=1) as peer:
        call_id = endpoint.act(lambda ua, now: ua.invite(_sipp_uri(peer), now, body=SDP))
        await endpoint.next_event(ev.CallEstablished)
        endpoint.act(lambda ua, now: ua.refer(call_id, SipUri.parse("sip:carol@127.0.0.1"),
                                              now))
        answered = await endpoint.next_event(ev.ReferAnswered)
        assert isinstance(answered, ev.ReferAnswered) and answered.status == 202
        trying = await endpoint.next_event(ev.ReferProgressNotified)
        assert isinstance(trying, ev.ReferProgressNotified)
        assert (trying.status, trying.subscription_terminated) == (100, False)
        done = await endpoint.next_event(ev.ReferProgressNotified)
        assert isinstance(done, ev.ReferProgressNotified)
        assert (done.status, done.subscription_terminated) == (200, True)
        endpoint.act(lambda ua, now: ua.hangup(call_id, now))
        await endpoint.next_event(ev.CallEnded)
        assert_all_successful(await peer.wait(), 1)


async def test_cancel_of_a_ringing_call(endpoint: SipEndpoint, tmp_path: Path) -> None:
    application, task = await serve(endpoint, ring_only=True)
    try:
        async with sipp(tmp_path, endpoint.local_address, scenario="cancel_uac.xml",
                        calls=1) as peer:
            result = await peer.wait()
        assert_all_successful(result, 1)  # 200 to CANCEL, 487 to INVITE (RFC 3261 §9.2)
        assert len(application.of_type(ev.CallCancelled)) == 1
    finally:
        task.cancel()


async def test_reinvite_glare_answered_491_and_retried(endpoint: SipEndpoint,
                                                       tmp_path: Path) -> None:
    async with sipp(tmp_path, None, scenario="glare_491_uas.xml", calls=1) as peer:
        call_id = endpoint.act(lambda ua, now: ua.invite(_sipp_uri(peer), now, body=SDP))
        await endpoint.next_event(ev.CallEstablished)
        endpoint.act(lambda ua, now: ua.reinvite(call_id, now))
        failed = await endpoint.next_event(ev.ReinviteFailed)
        assert isinstance(failed, ev.ReinviteFailed) and failed.status == 491
        assert failed.retry_at is not None  # RFC 3261 §14.1 back-off, done by the UA
        accepted = await endpoint.next_event(ev.ReinviteAccepted, timeout=15)
        assert isinstance(accepted, ev.ReinviteAccepted)
        endpoint.act(lambda ua, now: ua.hangup(call_id, now))
        await endpoint.next_event(ev.CallEnded)
        assert_all_successful(await peer.wait(), 1)


async def test_sipp_uac_with_20_percent_loss(endpoint: SipEndpoint, tmp_path: Path) -> None:
    application, task = await serve(endpoint)
    try:
        async with sipp(tmp_path, endpoint.local_address, scenario="uac", calls=20,
                        rate=10, extra=["-lost", "20", "-recv_timeout", "60000"]) as peer:
            result = await peer.wait(limit=120)
        assert_all_successful(result, 20)
        assert result.last("Retransmissions(C)") > 0
        # Retransmitted INVITEs were absorbed by the transaction layer (§17.2.1): one
        # call each. (CallEnded is not counted: SIPp's -lost "sends" some ACK/BYE into
        # the void yet counts the call, and our UA then ends it after Timer H, 32 s.)
        assert len(application.of_type(ev.IncomingCallReceived)) == 20
    finally:
        task.cancel()


async def test_our_uac_with_20_percent_loss(endpoint: SipEndpoint, tmp_path: Path) -> None:
    """Our INVITE/ACK/BYE retransmissions complete 10 calls through 20 % loss.

    The calls run one after the other, so the run lasts as long as the machine makes
    it (on a loaded CI host, 10 calls at 8 % of a core took over 60 s, and SIPp's
    default -timeout of 60 s from its start ended the last call). The bounds are the
    per-step limits below; SIPp's own global timeout is set above their sum, so it
    only stops a SIPp that hangs."""
    calls, step_limit = 10, 40.0
    sipp_limit = int(calls * 2 * step_limit + SIPP_WAIT_LIMIT)
    async with sipp(tmp_path, None, scenario="uas_lossy.xml", calls=calls,
                    extra=["-timeout", str(sipp_limit)]) as peer:
        for _ in range(calls):
            call_id = endpoint.act(lambda ua, now: ua.invite(_sipp_uri(peer), now, body=SDP))
            established = await endpoint.next_event(ev.CallEstablished, timeout=step_limit)
            assert isinstance(established, ev.CallEstablished)
            assert established.call_id == call_id
            endpoint.act(hanging_up(call_id))
            ended = await endpoint.next_event(ev.CallEnded, timeout=step_limit)
            assert isinstance(ended, ev.CallEnded)
        assert_all_successful(await peer.wait(limit=SIPP_WAIT_LIMIT), calls)


async def test_rebind_mid_dialog_moves_sipps_remote_target(tmp_path: Path) -> None:
    config = UaConfig(local_uri=NameAddr.parse("<sip:ours@127.0.0.1>"), host="127.0.0.2",
                      port=0, transport=TransportKind.UDP, contact_user="ours")
    ours = await SipEndpoint.open(config, os.urandom)
    try:
        async with sipp(tmp_path, None, scenario="rebind_uas.xml", calls=1) as peer:
            call_id = ours.act(lambda ua, now: ua.invite(_sipp_uri(peer), now, body=SDP))
            await ours.next_event(ev.CallEstablished)
            old = ours.local_address
            new = await ours.rebind("127.0.0.3")  # re-INVITE with the new Contact
            assert new == ("127.0.0.3", old[1])
            accepted = await ours.next_event(ev.ReinviteAccepted)
            assert isinstance(accepted, ev.ReinviteAccepted)
            ended = await ours.next_event(ev.CallEnded)  # SIPp's BYE
            assert isinstance(ended, ev.CallEnded) and ended.by_peer
            assert ended.call_id == call_id
            result = await peer.wait()
            assert_all_successful(result, 1)  # SIPp checked the new Contact
            # The peer's remote target followed: its BYE names our new address.
            assert f"BYE sip:ours@127.0.0.3:{new[1]} SIP/2.0" in result.messages
    finally:
        await ours.close()


def _sipp_uri(peer: Sipp) -> SipUri:
    host, port = peer.local
    return SipUri("sip", user="service", host=host, port=port)


@pytest.mark.slow
async def test_sustained_sipp_load_without_failures(endpoint: SipEndpoint,
                                                    tmp_path: Path) -> None:
    """2,000 calls at 200 calls/s from SIPp: every one completes (no failed call)."""
    application, task = await serve(endpoint)
    try:
        async with sipp(tmp_path, endpoint.local_address, scenario="uac", calls=2000,
                        rate=200, extra=["-buff_size", "4194304"]) as peer:
            result = await peer.wait(limit=120)
        assert_all_successful(result, 2000)
        assert len(application.of_type(ev.IncomingCallReceived)) == 2000
    finally:
        task.cancel()
