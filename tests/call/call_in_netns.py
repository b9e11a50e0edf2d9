"""One real secure call between two of our CallAgents, run where it is started.

Meant to run inside a test host (``ip netns exec NS python -m tests.call.call_in_netns``)
so that a capture on that host's ``lo`` sees exactly this call and nothing else. Alice
(``--caller-port``, sends ``--tone``) calls Bob (port 5060, sends 440 Hz) with the MIKEY
mode given (credentials as :mod:`mobilityd.bench.setup` makes them), the call runs
``--seconds``, Alice hangs up. Prints one JSON object: the call's facts as the caller's
:class:`~mobilityd.mikey.context.CryptoContext` has them (CSB ID, CS ID map, SRTP master
key and salt per crypto session, RFC 3830 §4.1.3 / §6.1.1) and the ports used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mobilityd.bench.setup import ALICE, BOB, keying_for, write_credentials
from mobilityd.call import events as ce
from mobilityd.call.agent import AgentConfig, CallAgent
from mobilityd.call.audio import AudioOptions
from mobilityd.call.identity import sip_identity
from mobilityd.call.keying import KeyingConfig, KeyMethod, PeerKeying
from mobilityd.call.negotiation import CallSecurity

HOST = "127.0.0.1"
CALLEE_PORT = 5060
CALLEE_TONE = 440.0


async def _next(agent: CallAgent, kind: type[ce.CallEvent], timeout: float = 10.0
                ) -> ce.CallEvent:
    async with asyncio.timeout(timeout):
        while True:
            event = await agent.events.get()
            if isinstance(event, kind | ce.CallRefused):
                return event


async def place_call(mode: str, caller_port: int, tone: float, seconds: float,
                     creds: Path, *, wrong_psk: bool = False, skew: float = 0.0
                     ) -> dict[str, Any]:
    """The call (module docstring); ``wrong_psk``: Bob holds another PSK for Alice, so
    her offer fails MIKEY verification and the call is refused (thesis §11.4); ``skew``:
    Bob's clock is that many seconds ahead (her timestamp is then out of his window)."""
    security = CallSecurity.OFF if mode == "none" else CallSecurity.REQUIRED
    bob_keying = keying_for(mode, BOB, ALICE, creds)
    if wrong_psk:
        bob_keying = KeyingConfig(peers={sip_identity(ALICE): PeerKeying(
            KeyMethod.PSK, bytes(32))})
    bob = CallAgent(AgentConfig(BOB, HOST, CALLEE_PORT, security=security,
                                keying=bob_keying,
                                audio=AudioOptions(tone_hz=CALLEE_TONE), auto_answer=True),
                    wall_clock=lambda: time.time() + skew)
    alice = CallAgent(AgentConfig(ALICE, HOST, caller_port, security=security,
                                  keying=keying_for(mode, ALICE, BOB, creds),
                                  audio=AudioOptions(tone_hz=tone),
                                  contacts={sip_identity(BOB): (HOST, CALLEE_PORT)}))
    await bob.start()
    await alice.start()
    try:
        call_id = await alice.place(BOB)
        connected = await _next(alice, ce.CallConnected)
        if (wrong_psk or skew) and isinstance(connected, ce.CallRefused):
            refused_by_bob = await _next(bob, ce.CallRefused)
            offerer = alice.call(call_id).offerer
            assert isinstance(refused_by_bob, ce.CallRefused) and offerer is not None
            return {"call_id": call_id, "refused": connected.status,
                    "caller_sees": connected.mikey_error.name if connected.mikey_error else None,
                    "callee_sent": refused_by_bob.mikey_error.name
                    if refused_by_bob.mikey_error else None,
                    "csb_id": offerer.csb_id}
        if not isinstance(connected, ce.CallConnected):
            raise RuntimeError(f"call not connected: {connected}")
        await asyncio.sleep(seconds)
        call = alice.call(call_id)
        negotiated, media, context = call.negotiated, call.media, call.context
        assert negotiated is not None and media is not None
        facts: dict[str, Any] = {
            "call_id": call_id, "secure": negotiated.secure,
            "suite": negotiated.suite.name if negotiated.suite else None,
            "caller": {"sip_port": caller_port, "rtp_port": media.local_rtp[1],
                       "ssrc": negotiated.local_ssrc},
            "callee": {"sip_port": CALLEE_PORT, "rtp_port": negotiated.remote_rtp[1],
                       "ssrc": negotiated.remote_ssrc},
            "tone_hz": tone, "received_tone": call.monitor.dominant([CALLEE_TONE, tone]),
            "counters": call.counters(),
        }
        if context is not None:
            facts["csb_id"] = context.csb_id
            facts["cs_map"] = [[e.policy_no, e.ssrc, e.roc] for e in context.cs_map]
            facts["srtp_master"] = {
                str(cs_id): [part.hex() for part in context.srtp_master(cs_id)]
                for cs_id in range(1, len(context.cs_map) + 1)
            }
        await alice.hangup(call_id)
        await _next(bob, ce.CallTerminated)
        return facts
    finally:
        await alice.close()
        await bob.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="psk")
    parser.add_argument("--caller-port", type=int, default=5062)
    parser.add_argument("--tone", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--wrong-psk", action="store_true")
    parser.add_argument("--callee-clock-skew", type=float, default=0.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="md-call-") as tmp:
        if args.mode not in ("none", "psk"):
            write_credentials(Path(tmp))
        facts = asyncio.run(place_call(args.mode, args.caller_port, args.tone, args.seconds,
                                       Path(tmp), wrong_psk=args.wrong_psk,
                                       skew=args.callee_clock_skew))
    json.dump(facts, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
