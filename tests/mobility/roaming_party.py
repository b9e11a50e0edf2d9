"""One party of a roaming test call, run inside its test host's namespace.

``python -m tests.mobility.roaming_party alice|bob '<json options>'``. Alice answers,
Bob calls her (MIKEY PSK in the INVITE, RFC 4567 §3.1 / RFC 3830 §3.1); both send
SRTP audio all the time, one frame every ``"ptime_ms"`` (default 20 ms, RFC 3551 §4.5
G.711's default; announced as ``a=ptime``, RFC 8866 §6.4) with sequence numbers
starting near 65535 so the ROC wraps (RFC 3711 §3.3.1), both have a
:class:`CallMover` and a :class:`MoveGuard`. Bob can also run the
:class:`PathMonitor` (``"auto": true``) and move by himself.

Control: JSON lines on stdin (``{"cmd": "move", "ip": ...}``, ``"stats"``,
``"refresh"``, ``"hold_reinvites"`` / ``"release_reinvites"`` (keep incoming
re-INVITEs unanswered, then answer them), ``"hangup"``, ``"quit"``); JSON lines on
stdout (``{"event": ...}``, stats).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from typing import Any

from mobilityd.call.audio import samples_for_ptime
from mobilityd.call.sdpmedia import PTIME_MS
from mobilityd.media.endpoint import MediaEndpoint
from mobilityd.media.events import MediaEvent, RemoteAddressConfirmed
from mobilityd.media.keying import sessions_for_call
from mobilityd.media.pacing import enable_realtime_scheduling
from mobilityd.media.rtp import build_rtp
from mobilityd.mikey.payloads import SrtpCsEntry
from mobilityd.mikey.sdp import decode_key_mgmt, encode_key_mgmt
from mobilityd.mikey.session import PskInitiator, Responder
from mobilityd.mobility.decision import CallPath
from mobilityd.mobility.move import MediaAddress, move_offer
from mobilityd.mobility.pathmonitor import PathMonitor
from mobilityd.mobility.roaming import CallMover, MoveGuard, Roamer, RoamingCall
from mobilityd.service.heap import settle_heap
from mobilityd.sip import events as ev
from mobilityd.sip.endpoint import SipEndpoint
from mobilityd.sip.sdp import SessionDescription
from mobilityd.sip.transport import TransportKind
from mobilityd.sip.uri import NameAddr, SipUri
from mobilityd.sip.useragent import UaConfig
from tests.mobility import roaming_trace


class HookableEndpoint(SipEndpoint):
    """An interpreted subclass, so that an instance takes an ``event_received`` hook
    of its own (the mypyc-compiled SipEndpoint has no instance dictionary)."""


PSK = bytes(range(32))
DOMAIN = "mobilityd.test"
SSRC = {"bob": 0x0B0B0B0B, "alice": 0x0A0A0A0A}
START_SEQ = 65500


def identity(user: str) -> bytes:
    return f"sip:{user}@{DOMAIN}".encode()


def sdp(user: str, host: str, port: int, key_mgmt: bytes,
        ptime_ms: int = PTIME_MS) -> SessionDescription:
    kind = "IP6" if ":" in host else "IP4"
    return SessionDescription.parse(
        f"v=0\r\no={user} 1000 1 IN {kind} {host}\r\ns=-\r\nc=IN {kind} {host}\r\nt=0 0\r\n"
        f"a=key-mgmt:{encode_key_mgmt(key_mgmt)}\r\n"
        f"m=audio {port} RTP/SAVP 0\r\na=rtcp:{port + 1}\r\na=rtpmap:0 PCMU/8000\r\n"
        f"a=ptime:{ptime_ms}\r\n")


_unwritten: list[dict[str, Any]] = []


def _write_out() -> None:
    lines = "".join(json.dumps(fields, default=str) + "\n" for fields in _unwritten)
    _unwritten.clear()
    sys.stdout.write(lines)
    sys.stdout.flush()


def out(**fields: Any) -> None:
    """Report an event on stdout. ``at`` is stamped now (CLOCK_MONOTONIC: the same for
    every process); inside the event loop the line is written by the next loop
    iteration, so that a report made in the middle of a move (the decision, a target
    refresh) does not wake the reading process -- which on a busy machine preempts us
    -- before the move's packets are out. The line is also *encoded* then (values that
    are not JSON, e.g. a decision, are written as their ``str``): formatting reports is
    the harness's work, not the daemon's, and must not sit on the move's path."""
    fields.setdefault("at", time.monotonic())
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        print(json.dumps(fields, default=str), flush=True)
        return
    if not _unwritten:
        loop.call_soon(_write_out)
    _unwritten.append(fields)


class Party:
    def __init__(self, role: str, options: dict[str, Any]) -> None:
        self.role, self.options = role, options
        self.peer_role = "alice" if role == "bob" else "bob"
        self.call: RoamingCall | None = None
        self.mover: CallMover | None = None
        self.guard: MoveGuard | None = None
        self.seq = START_SEQ
        self.received: list[tuple[float, str, int]] = []  # (t, source ip, seq)
        self.confirmed: list[tuple[float, str]] = []
        self.sip_events: list[str] = []
        self.sessions: tuple[int, int] | None = None
        self.ended = False
        #: incoming re-INVITEs kept unanswered (command "hold_reinvites"), or None
        self.held: list[ev.ReinviteReceived] | None = None
        #: one audio frame every ptime_ms
        self.ptime_ms = int(options.get("ptime_ms", PTIME_MS))
        self.tracing = bool(options.get("trace"))
        if self.tracing:
            roaming_trace.install(role)

    # -- set-up ----------------------------------------------------------------------
    async def open_sip(self) -> SipEndpoint:
        config = UaConfig(local_uri=NameAddr.parse(f"<sip:{self.role}@{DOMAIN}>"),
                          host=self.options["sip_ip"], port=self.options.get("sip_port", 0),
                          transport=TransportKind.UDP, contact_user=self.role)
        sip = await HookableEndpoint.open(config, os.urandom)
        sip.event_received = self.sip_event  # type: ignore[method-assign]
        return sip

    def media(self, ip: str, context: Any, port: int = 0) -> MediaEndpoint:
        tx, rx = sessions_for_call(context, [SSRC[self.role]], [SSRC[self.peer_role]],
                                   keep_index_history=True)
        self.sessions = (id(tx), id(rx))
        return MediaEndpoint(ip, tx=tx, rx=rx, local_port=port, on_rtp=self.rtp_in,
                             on_event=self.media_event)

    def rtp_in(self, plain: bytes, source: tuple[str, int]) -> None:
        self.received.append((time.monotonic(), source[0], int.from_bytes(plain[2:4], "big")))

    def media_event(self, event: MediaEvent) -> None:
        if isinstance(event, RemoteAddressConfirmed):
            self.confirmed.append((time.monotonic(), event.rtp[0]))
            out(event="media_followed", to=list(event.rtp))

    def sip_event(self, event: object) -> None:
        self.sip_events.append(type(event).__name__)
        self.sip.events.put_nowait(event)  # type: ignore[arg-type]
        if isinstance(event, ev.ReinviteReceived) and self.held is not None:
            self.held.append(event)  # answered on "release_reinvites"
            return
        for handler in (self.mover, self.guard):
            if handler is not None:
                handler.handle_sip_event(event)
        if isinstance(event, ev.IncomingCallReceived):
            asyncio.get_running_loop().create_task(self.answer(event))
        elif isinstance(event, ev.CallEnded):
            self.ended = True
            out(event="ended", by_peer=event.by_peer, reason=event.reason)
        elif isinstance(event, ev.ReinviteAccepted | ev.ReinviteFailed):
            out(event=type(event).__name__, status=getattr(event, "status", 200))
        elif isinstance(event, ev.RemoteTargetRefreshed):
            out(event="target_refreshed", new=str(event.new))

    async def answer(self, event: ev.IncomingCallReceived) -> None:
        offer = SessionDescription.parse(event.request.body)
        i_message = decode_key_mgmt(f"mikey {offer.key_mgmt[0].data}")
        done = Responder(local_id=identity(self.role), psk=PSK,
                         peer_id=identity(self.peer_role)).receive(i_message, time.time())
        assert done.reply is not None
        endpoint = self.media(self.options["media_ip"], done.context)
        await endpoint.open()
        connection = offer.connection_of(0)
        assert connection is not None
        endpoint.set_remote((connection.address, offer.media[0].port))
        local = sdp(self.role, self.options["media_ip"], endpoint.local_rtp[1], done.reply,
                    self.ptime_ms)
        self.attach(RoamingCall(event.call_id, self.sip, endpoint, done.context, local, offer))
        self.sip.act(lambda ua, now: ua.answer_call(event.call_id, now, body=bytes(local)))
        out(event="established", call_id=event.call_id)

    def attach(self, call: RoamingCall) -> None:
        call.local_alternates = dict(self.options.get("alternates", {}))
        self.call = call
        self.mover = CallMover(call)
        self.guard = MoveGuard(call)
        # run like the daemon after its start-up (mobilityd.service.heap)
        settle_heap()
        asyncio.get_running_loop().call_soon(self.talk)

    async def place_call(self) -> None:
        cs_map = (SrtpCsEntry(0, SSRC["bob"], 0), SrtpCsEntry(0, SSRC["alice"], 0))
        initiator = PskInitiator(psk=PSK, local_id=identity("bob"), peer_id=identity("alice"),
                                 cs_map=cs_map)
        i_message = initiator.start(time.time(), os.urandom)
        # the media port is bound first so that the offer names it
        probe = MediaEndpoint(self.options["media_ip"], tx=None, rx=None)
        await probe.open()
        port = probe.local_rtp[1]
        probe.close()
        offer = sdp("bob", self.options["media_ip"], port, i_message, self.ptime_ms)
        peer = SipUri("sip", user="alice", host=self.options["peer_sip_ip"],
                      port=self.options["peer_sip_port"])
        call_id = self.sip.act(lambda ua, now: ua.invite(peer, now, body=bytes(offer)))
        established = await self.sip.next_event(ev.CallEstablished)
        answer = SessionDescription.parse(established.message.body)  # type: ignore[union-attr]
        context = initiator.receive_response(
            decode_key_mgmt(f"mikey {answer.key_mgmt[0].data}"), time.time())
        endpoint = self.media(self.options["media_ip"], context, port)
        await endpoint.open()
        connection = answer.connection_of(0)
        assert connection is not None
        endpoint.set_remote((connection.address, answer.media[0].port))
        self.attach(RoamingCall(call_id, self.sip, endpoint, context, offer, answer))
        out(event="established", call_id=call_id)

    # -- audio -----------------------------------------------------------------------
    def talk(self) -> None:
        call = self.call
        if call is None or self.ended:
            return
        seq = self.seq & 0xFFFF
        if self.tracing:
            roaming_trace.stamp("tick", str(seq))
        samples = samples_for_ptime(self.ptime_ms)
        with contextlib.suppress(Exception):
            call.media.send_rtp(build_rtp(0, seq, self.seq * samples, SSRC[self.role],
                                          b"\xff" * samples))
        self.seq += 1
        asyncio.get_running_loop().call_later(self.ptime_ms / 1000, self.talk)

    # -- reports ---------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        call = self.call
        assert call is not None
        media = call.media
        tx, rx = media.tx, media.rx
        assert tx is not None and rx is not None and tx.index_history is not None
        dialog = self.sip.ua.call(call.call_id).dialog
        sent = tx.counters(SSRC[self.role]).packets
        return {
            "role": self.role,
            "call_id": call.call_id,
            "sent": sent,
            "index_reuse": sent - len(tx.index_history),
            "received": len(self.received),
            "received_log": self.received[-400:],
            "auth_failures": media.counters.auth_failures,
            "replays": media.counters.replays,
            "same_sessions": self.sessions == (id(tx), id(rx)),
            "roc_tx": tx.get_roc(SSRC[self.role]),
            "local_rtp": list(media.local_rtp),
            "remote_rtp": list(media.remote_rtp or ()),
            "sip_local": list(self.sip.local_address),
            "remote_target": str(dialog.remote_target) if dialog else None,
            "local_tag": dialog.local_tag if dialog else None,
            "remote_tag": dialog.remote_tag if dialog else None,
            "local_uri": dialog.local_uri if dialog else None,
            "remote_uri": dialog.remote_uri if dialog else None,
            "local_seq": dialog.local_seq if dialog else None,
            "local_sdp": str(call.local_sdp),
            "accepted": len(self.guard.accepted) if self.guard else 0,
            "refused": [[r.status, r.reason, r.mikey_error is not None]
                        for r in (self.guard.refused if self.guard else [])],
            "confirmed": list(self.confirmed),
            "sip_events": list(self.sip_events),
            "ended": self.ended,
            "now": time.monotonic(),
            "trace": roaming_trace.STAMPS[-3000:] if self.tracing else [],
        }

    # -- control ---------------------------------------------------------------------
    async def command(self, line: str) -> bool:
        cmd = json.loads(line)
        call = self.call
        if cmd["cmd"] == "stats":
            out(event="stats", **self.stats())
        elif cmd["cmd"] == "move" and self.mover is not None:
            await self.mover.move_to(cmd["ip"], remote_media=cmd.get("remote_media"))
            out(event="moved", at=time.monotonic())
        elif cmd["cmd"] == "reinvite_then_move" and self.mover is not None and call:
            # an unchanged re-INVITE (a session refresh) is running when the move comes
            self.sip.act(lambda ua, now: ua.reinvite(call.call_id, now))
            await self.mover.move_to(cmd["ip"])
            out(event="moved", at=time.monotonic(), deferred=self.mover.deferred)
        elif cmd["cmd"] == "refresh" and call is not None:
            # an unchanged re-INVITE (session refresh, RFC 4028)
            self.sip.act(lambda ua, now: ua.reinvite(call.call_id, now))
        elif cmd["cmd"] == "hold_reinvites":
            self.held = []
            out(event="holding")
        elif cmd["cmd"] == "release_reinvites" and self.guard is not None:
            held, self.held = self.held or [], None
            for event in held:
                self.guard.handle_sip_event(event)
            out(event="released", count=len(held))
        elif cmd["cmd"] == "capture_move" and call is not None:
            # rebind and build the genuine offer, but hand it out instead of sending it
            # (what an on-path attacker captures before it reaches the peer)
            await call.media.rebind(cmd["ip"])
            await call.sip.rebind(cmd["ip"], refresh_dialogs=False)
            rtp = call.media.local_rtp
            offer = move_offer(call.local_sdp, call.context,
                               MediaAddress(rtp[0], rtp[1], call.media.local_rtcp[1]),
                               time.time(), os.urandom)
            call.context, call.local_sdp = offer.context, offer.sdp
            out(event="captured", body=offer.body.decode())
        elif cmd["cmd"] == "hangup" and call is not None:
            self.sip.act(lambda ua, now: ua.hangup(call.call_id, now))
        elif cmd["cmd"] == "quit":
            return False
        return True

    async def auto_roam(self) -> None:
        call = self.call
        assert call is not None and self.mover is not None
        monitor = PathMonitor(grace_period=self.options.get("grace", 30.0))
        await monitor.start()
        remote = call.media.remote_rtp
        assert remote is not None
        monitor.add_call(CallPath(call.call_id, call.media.local_rtp[0], remote[0],
                                  self.options["peer_sip_ip"],
                                  tuple(self.options.get("peer_alternates", ()))))
        def report(decision: object, done: bool) -> None:
            out(event="decision_done" if done else "decision", kind=type(decision).__name__,
                at=time.monotonic(), detail=decision)  # str() when written (out())

        roamer = Roamer(monitor, on_decision=report)
        roamer.add(self.mover)
        out(event="monitoring")
        await roamer.run()

    async def main(self) -> None:
        if self.options.get("realtime"):  # diagnosis only (bench handover --realtime)
            enable_realtime_scheduling()
        self.sip = await self.open_sip()
        out(event="ready", sip=list(self.sip.local_address))
        if self.role == "bob":
            await self.place_call()
            if self.options.get("auto"):
                asyncio.get_running_loop().create_task(self.auto_roam())
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := (await reader.readline()).decode():
            if not await self.command(line):
                break
        _write_out()  # what the last loop iteration did not write yet


if __name__ == "__main__":
    asyncio.run(Party(sys.argv[1], json.loads(sys.argv[2])).main())
