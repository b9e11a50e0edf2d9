"""One party of a transfer run in its own test host (namespace); used by the transfer
netns tests and ``python -m mobilityd.bench transfer``.

``python -m mobilityd.mobility.transfer_party alice|laptop|pda '<json options>'``
(options: ``ips`` per role, ``sip_port``, ``handoff_port``, ``device_key`` hex,
``announce_timeout``, ``transfer_timeout``, ``first_sequence`` of every RTP stream,
``trace`` to keep a :class:`Timeline`, ``realtime`` to run the loop at SCHED_FIFO,
``roaming`` to accept verified roaming re-INVITEs, ``record_dir`` where each party
records what it receives, ``<role>.wav``, ``parallel_announce`` (default true),
``handoff_drop_in``: 0-based indexes of the datagrams arriving on this party's
hand-off channel that it loses, deterministically, as if the link had dropped them).
Alice and the PDA answer; the laptop calls Alice.
Control: JSON lines on stdin (``{"cmd": "move", "device": "pda"}``, ``"pull"`` with a
``device``, ``"roam_and_move"`` with an ``ip`` and a ``device``, ``"stats"``,
``"timeline"``, ``"quit"``); JSON lines on stdout, times are
CLOCK_MONOTONIC (one clock for every process of the machine).
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import json
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from mobilityd.call.agent import AgentConfig
from mobilityd.call.audio import AudioOptions
from mobilityd.call.events import CallConnected, CallEvent
from mobilityd.call.identity import sip_identity
from mobilityd.call.keying import KeyingConfig, KeyMethod, PeerKeying
from mobilityd.call.secure_call import SecureCall
from mobilityd.media.events import FirstPacketReceived
from mobilityd.media.pacing import enable_realtime_scheduling
from mobilityd.mobility.agent_roaming import (
    MoveContexts,
    VerifyingReinvitePolicy,
    move_agent_call,
)
from mobilityd.mobility.transfer import TransferSucceeded
from mobilityd.mobility.transfer_agent import DeviceEntry, TransferAgent, TransferSettings
from mobilityd.service.heap import settle_heap

ALICE, BOB = "sip:alice@a.test", "sip:bob@b.test"
PSK = bytes(range(32))
TONES = {"alice": 440, "laptop": 1000, "pda": 1500}


def out(**fields: Any) -> None:
    fields.setdefault("at", time.monotonic())
    print(json.dumps(fields), flush=True)


class Timeline:
    """``options["trace"]``: CLOCK_MONOTONIC stamps (and the loop thread's CPU time) of
    the steps of a transfer in this process (SIP messages sent and received, hand-off
    tokens, where media is sent, the first packet of each SSRC, GC passes), for
    ``python -m mobilityd.bench transfer --timeline``. It wraps the endpoints' methods
    of this process only; nothing else changes."""

    def __init__(self) -> None:
        #: (CLOCK_MONOTONIC, CPU time of this thread, what happened)
        self.stamps: list[tuple[float, float, str]] = []

    def note(self, what: str) -> None:
        self.stamps.append((time.monotonic(), time.thread_time(), what))

    def install(self) -> None:
        from mobilityd.media.endpoint import MediaEndpoint  # noqa: PLC0415
        from mobilityd.media.udp import UdpChannel  # noqa: PLC0415
        from mobilityd.sip.endpoint import SipEndpoint  # noqa: PLC0415

        note = self.note
        sip_send, sip_received = SipEndpoint._send, SipEndpoint.message_received
        set_remote, rtp_in = MediaEndpoint.set_remote, MediaEndpoint._rtp_in
        sendto = UdpChannel.sendto
        last_destination: dict[int, object] = {}

        def traced_send(endpoint: Any, data: bytes, destination: Any) -> None:
            note("sip> " + data.split(b"\r\n", 1)[0].decode(errors="replace")[:40])
            sip_send(endpoint, data, destination)

        def traced_received(endpoint: Any, message: Any, flow: Any, raw: Any = None) -> None:
            note(f"sip< {getattr(message, 'method', None) or message.status}"
                 f" {message.cseq.method if message.cseq else ''}")
            sip_received(endpoint, message, flow, raw)

        def traced_set_remote(endpoint: Any, rtp: Any, rtcp: Any = None) -> None:
            note(f"media set_remote {rtp}")
            set_remote(endpoint, rtp, rtcp)

        def traced_sendto(channel: Any, data: bytes, address: Any) -> bool:
            if last_destination.get(id(channel)) != address:
                last_destination[id(channel)] = address
                note(f"udp> first to {address}")
            return bool(sendto(channel, data, address))

        def traced_rtp_in(endpoint: Any, data: bytes, source: Any) -> None:
            ssrc = int.from_bytes(data[8:12], "big")
            seen: set[int] = getattr(endpoint, "_traced_ssrcs", set())
            if ssrc not in seen:
                endpoint._traced_ssrcs = seen | {ssrc}
                note(f"udp< first of ssrc {ssrc:#x} from {source}")
            rtp_in(endpoint, data, source)

        self._time_calls()
        gc.callbacks.append(lambda phase, info: note(f"gc {phase} gen {info['generation']}"))
        for owner, name, traced in (
                (SipEndpoint, "_send", traced_send),
                (SipEndpoint, "message_received", traced_received),
                (MediaEndpoint, "set_remote", traced_set_remote),
                (MediaEndpoint, "_rtp_in", traced_rtp_in),
                (UdpChannel, "sendto", traced_sendto)):
            setattr(owner, name, traced)


    def _time_calls(self) -> None:
        """Stamp start and end of the CPU-heavy steps (MIKEY, SDP, media opening)."""
        from mobilityd.call.agent import CallAgent  # noqa: PLC0415
        from mobilityd.mobility import transfer_agent  # noqa: PLC0415
        from mobilityd.mobility.transfer.correspondent import TransferOffer  # noqa: PLC0415

        note = self.note

        def timed(name: str, function: Any) -> Any:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                note(f"{name} begin")
                try:
                    return function(*args, **kwargs)
                finally:
                    note(f"{name} end")
            return wrapper

        def timed_async(name: str, function: Any) -> Any:
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                note(f"{name} begin")
                try:
                    return await function(*args, **kwargs)
                finally:
                    note(f"{name} end")
            return wrapper

        for name in ("take_transfer", "offer_transfer", "read_transfer_sdp",
                     "build_transfer_sdp", "add_receive_streams"):
            setattr(transfer_agent, name, timed(name, getattr(transfer_agent, name)))
        for owner, name, wrap in (
                (TransferOffer, "receive_response", timed),
                (CallAgent, "_start_media", timed_async),
                (transfer_agent.TransferAgent, "_token_received", timed)):
            setattr(owner, name, wrap(name.strip("_"), getattr(owner, name)))


def _counters(call: SecureCall) -> dict[str, Any]:
    media = call.media
    if media is None or media.rx is None or media.tx is None:
        return {}
    rx, tx = media.rx, media.tx
    return {
        "auth_failures": sum(rx.counters(s).auth_failures for s in rx.ssrcs)
        + rx.unknown_ssrc_auth_failures,
        "rx_packets": sum(rx.counters(s).packets for s in rx.ssrcs),
        "tx_packets": sum(tx.counters(s).packets for s in tx.ssrcs),
        "index_reuse_refused": tx.index_reuse_refused,
        "tx_id": id(tx),
        "tx_ssrcs": list(tx.ssrcs),
        "tx_rocs": {str(s): tx.get_roc(s) for s in tx.ssrcs},
        "rx_rocs": {str(s): rx.get_roc(s) for s in rx.ssrcs},
    }


def start_sequences_at(first_sequence: int) -> None:
    """Every RTP stream this process sends starts at ``first_sequence`` (RFC 3550 §5.1)
    instead of a random number below 2^15: near 65535 the stream wraps, and its ROC
    (RFC 3711 §3.3.1) is 1, within a second of the call (the ROC > 0 transfer)."""
    from mobilityd.call import secure_call  # noqa: PLC0415
    from mobilityd.media.stream import StreamParams  # noqa: PLC0415

    def params(**fields: Any) -> StreamParams:
        return StreamParams(**{**fields, "first_sequence": first_sequence})

    setattr(secure_call, "StreamParams", params)  # noqa: B010 (read at call time)


class LossyChannelAgent(TransferAgent):
    """A TransferAgent whose hand-off channel loses the ``drop_in``-th arriving
    datagrams (0-based) before anything reads them: deterministic loss for the tests
    of the reliable channel (a lost EXPECT, a lost ACCEPT)."""

    drop_in: frozenset[int] = frozenset()
    handoff_received = 0
    handoff_lost = 0

    def _token_received(self, data: bytes, source: tuple[str, int]) -> None:
        index, self.handoff_received = self.handoff_received, self.handoff_received + 1
        if index in self.drop_in:
            self.handoff_lost += 1
            return
        super()._token_received(data, source)


class Party:
    def __init__(self, role: str, options: dict[str, Any]) -> None:
        self.role, self.options = role, options
        self.timeline = Timeline()
        if options.get("trace"):
            self.timeline.install()
        if options.get("first_sequence") is not None:
            start_sequences_at(int(options["first_sequence"]))
        ips: dict[str, str] = options["ips"]
        user = ALICE if role == "alice" else BOB
        peer = BOB if role == "alice" else ALICE
        port, hport = int(options["sip_port"]), int(options["handoff_port"])
        devices = {
            name: DeviceEntry(f"sip:bob@{ips[name]}:{port}", (ips[name], hport))
            for name in ("laptop", "pda") if name != role
        }
        keying = KeyingConfig(peers={sip_identity(peer): PeerKeying(KeyMethod.PSK, PSK)})
        contacts = {sip_identity(ALICE): (ips["alice"], port)} if role == "laptop" else {}
        self.contexts = MoveContexts()
        record_dir = options.get("record_dir")
        recording = Path(record_dir) / f"{role}.wav" if record_dir else None
        reinvites = VerifyingReinvitePolicy() if options.get("roaming") else None
        self.agent = LossyChannelAgent(
            AgentConfig(user, ips[role], port, keying=keying, auto_answer=True,
                        contacts=contacts,
                        audio=AudioOptions(tone_hz=TONES[role], record_to=recording)),
            TransferSettings(role, bytes.fromhex(options["device_key"]), user, devices,
                             handoff_port=hport,
                             announce_timeout=float(options.get("announce_timeout", 2.0)),
                             transfer_timeout=float(options.get("transfer_timeout", 8.0)),
                             parallel_announce=bool(options.get("parallel_announce", True))),
            reinvite_policy=reinvites)
        self.agent.drop_in = frozenset(int(i) for i in options.get("handoff_drop_in", ()))
        self.agent.add_listener(self._on_event)

    def _on_event(self, event: CallEvent) -> None:
        if isinstance(event, CallConnected):
            out(event="connected", call=event.call_id)

    async def _roam_and_move(self, new_ip: str, device: str) -> None:
        """Move the call's media and SIP to ``new_ip`` (verified re-INVITE with a MIKEY
        update, RFC 3830 §4.5, :func:`move_agent_call`) and, at the same time, move the
        call to ``device``; reports both outcomes."""
        (call,) = [c for c in self.agent.calls.values() if c.state.value == "connected"]
        roam = asyncio.create_task(move_agent_call(self.agent, call.call_id, new_ip,
                                                   self.contexts))
        await asyncio.sleep(0)  # the re-INVITE leaves first
        result = await self.agent.move(call.call_id, device)
        try:
            roamed = type(await roam).__name__
        except Exception as exc:  # the old leg may end before the re-INVITE's answer
            roamed = f"{type(exc).__name__}: {exc}"
        out(event="moved", ok=isinstance(result, TransferSucceeded), roamed=roamed,
            reason=getattr(result, "reason", ""), status=getattr(result, "status", 200))

    def stats(self) -> dict[str, Any]:
        calls = {}
        for call in self.agent.calls.values():
            first = [e.at for e in call.media_events if isinstance(e, FirstPacketReceived)]
            calls[call.call_id] = {"state": call.state.value, "frames": call.monitor.frames,
                                   "first_packet_at": min(first) if first else None,
                                   **_counters(call)}
        gaps = [clock.gap for clock in self.agent.arrivals.values() if clock.gap is not None]
        return {"event": "stats", "calls": calls, "gaps": gaps,
                "outcomes": self.agent.transfer_outcomes,
                "refused": self.agent.transfers_refused,
                "tokens_dropped": self.agent.tokens_dropped,
                "tokens_resent": self.agent.tokens_resent,
                "tokens_repeated": self.agent.tokens_repeated,
                "invites_held": self.agent.invites_held,
                "handoff_lost": self.agent.handoff_lost}

    async def run(self) -> None:
        if self.options.get("realtime"):  # diagnosis only (bench --realtime)
            enable_realtime_scheduling()
        await self.agent.start()
        # run like the daemon after its start-up (mobilityd.service.heap)
        settle_heap()
        out(event="ready")
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        try:
            await self._serve(reader)
        except BaseException:
            traceback.print_exc()  # the harness shows it with its error
            raise
        finally:
            await self.agent.close()

    async def _serve(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            command = json.loads(line)
            try:
                await self.handle(command)
            except Exception as exc:  # report, keep serving (the harness waits)
                out(event="error", command=command.get("cmd"), error=repr(exc))
                if command.get("cmd") == "stats":
                    out(event="stats", calls={}, gaps=[], outcomes=[], refused=[],
                        tokens_dropped=0, error=repr(exc))
            if command.get("cmd") == "quit":
                break
        print(f"{self.role}: command loop ended", file=sys.stderr, flush=True)

    async def handle(self, command: dict[str, Any]) -> None:
        cmd = command.get("cmd")
        if cmd == "call":
            call_id = await self.agent.place(ALICE)
            out(event="placed", call=call_id)
        elif cmd == "move":
            calls = [c for c in self.agent.calls.values() if c.state.value == "connected"]
            if not calls:
                out(event="moved", ok=False, reason="no call")
                return
            started = time.monotonic()
            self.timeline.note("move command")
            result = await self.agent.move(calls[0].call_id, command["device"])
            out(event="moved", ok=isinstance(result, TransferSucceeded), started=started,
                reason=getattr(result, "reason", ""), status=getattr(result, "status", 200))
        elif cmd == "roam_and_move":  # the laptop roams while it moves the call
            await self._roam_and_move(command["ip"], command["device"])
        elif cmd == "pull":  # ask the other device for its call (PULL token)
            started = time.monotonic()
            pulled = await self.agent.pull(command["device"], timeout=20.0)
            out(event="pulled", ok=pulled is not None, started=started,
                call=pulled.call_id if pulled is not None else None)
        elif cmd == "stats":
            out(**self.stats())
        elif cmd == "timeline":  # the stamps so far, then a fresh timeline
            out(event="timeline", stamps=self.timeline.stamps)
            self.timeline.stamps = []


def main(argv: list[str]) -> int:
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # a stuck party tells where
    role, options = argv[0], json.loads(argv[1])
    asyncio.run(Party(role, options).run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
