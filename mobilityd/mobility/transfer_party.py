"""One party of a transfer run in its own test host (namespace); used by the transfer
netns tests and ``python -m mobilityd.bench transfer``.

``python -m mobilityd.mobility.transfer_party alice|laptop|pda '<json options>'``
(options: ``ips`` per role, ``sip_port``, ``handoff_port``, ``device_key`` hex,
``announce_timeout``, ``transfer_timeout``). Alice and the PDA answer; the laptop calls Alice.
Control: JSON lines on stdin (``{"cmd": "move", "device": "pda"}``, ``"stats"``,
``"quit"``); JSON lines on stdout, times are CLOCK_MONOTONIC (one clock for every
process of the machine).
"""

from __future__ import annotations

import asyncio
import faulthandler
import json
import signal
import sys
import time
import traceback
from typing import Any

from mobilityd.call.agent import AgentConfig
from mobilityd.call.audio import AudioOptions
from mobilityd.call.events import CallConnected, CallEvent
from mobilityd.call.identity import sip_identity
from mobilityd.call.keying import KeyingConfig, KeyMethod, PeerKeying
from mobilityd.call.secure_call import SecureCall
from mobilityd.media.events import FirstPacketReceived
from mobilityd.mobility.transfer import TransferSucceeded
from mobilityd.mobility.transfer_agent import DeviceEntry, TransferAgent, TransferSettings

ALICE, BOB = "sip:alice@a.test", "sip:bob@b.test"
PSK = bytes(range(32))
TONES = {"alice": 440, "laptop": 1000, "pda": 1500}


def out(**fields: Any) -> None:
    fields.setdefault("at", time.monotonic())
    print(json.dumps(fields), flush=True)


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
    }


class Party:
    def __init__(self, role: str, options: dict[str, Any]) -> None:
        self.role, self.options = role, options
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
        self.agent = TransferAgent(
            AgentConfig(user, ips[role], port, keying=keying, auto_answer=True,
                        contacts=contacts, audio=AudioOptions(tone_hz=TONES[role])),
            TransferSettings(role, bytes.fromhex(options["device_key"]), user, devices,
                             handoff_port=hport,
                             announce_timeout=float(options.get("announce_timeout", 2.0)),
                             transfer_timeout=float(options.get("transfer_timeout", 8.0))))
        self.agent.add_listener(self._on_event)

    def _on_event(self, event: CallEvent) -> None:
        if isinstance(event, CallConnected):
            out(event="connected", call=event.call_id)

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
                "tokens_dropped": self.agent.tokens_dropped}

    async def run(self) -> None:
        await self.agent.start()
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
            result = await self.agent.move(calls[0].call_id, command["device"])
            out(event="moved", ok=isinstance(result, TransferSucceeded), started=started,
                reason=getattr(result, "reason", ""), status=getattr(result, "status", 200))
        elif cmd == "stats":
            out(**self.stats())


def main(argv: list[str]) -> int:
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # a stuck party tells where
    role, options = argv[0], json.loads(argv[1])
    asyncio.run(Party(role, options).run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
