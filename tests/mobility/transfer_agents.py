"""Three real TransferAgents (Alice, Bob's laptop, Bob's PDA) over loopback UDP SIP,
with SRTP media and the hand-off channel; shared by the transfer agent tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from mobilityd.call.agent import AgentConfig, ReinvitePolicy
from mobilityd.call.audio import AudioOptions
from mobilityd.call.events import CallConnected, CallEvent
from mobilityd.call.identity import sip_identity
from mobilityd.call.keying import KeyingConfig, KeyMethod, PeerKeying
from mobilityd.call.secure_call import SecureCall
from mobilityd.mobility.transfer_agent import DeviceEntry, TransferAgent, TransferSettings
from tests.call.credentials import PSK

ALICE, BOB = "sip:alice@a.test", "sip:bob@b.test"
DEVICE_KEY = bytes(range(64, 96))
HOST = "127.0.0.1"


def keying(peer: str) -> KeyingConfig:
    return KeyingConfig(peers={sip_identity(peer): PeerKeying(KeyMethod.PSK, PSK)})


async def next_of(agent: TransferAgent, kind: type[CallEvent], timeout: float = 10.0
                  ) -> CallEvent:
    async with asyncio.timeout(timeout):
        while True:
            event = await agent.events.get()
            if isinstance(event, kind):
                return event


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def auth_failures(call: SecureCall) -> int:
    media = call.media
    if media is None or media.rx is None:
        return 0
    rx = media.rx
    return sum(rx.counters(s).auth_failures for s in rx.ssrcs) + rx.unknown_ssrc_auth_failures


@dataclass
class Parties:
    alice: TransferAgent
    laptop: TransferAgent
    pda: TransferAgent
    call_id: str

    def connected(self, agent: TransferAgent) -> SecureCall | None:
        calls = [c for c in agent.calls.values() if c.state.value == "connected"]
        return calls[0] if calls else None


def _bob(device: str, other: str, other_agent: TransferAgent | None,
         transfer_timeout: float, *, reinvites: ReinvitePolicy | None = None,
         cls: type[TransferAgent] = TransferAgent) -> TransferAgent:
    devices = {}
    if other_agent is not None:
        host, port = other_agent.sip.local_address
        devices[other] = DeviceEntry(f"sip:bob@{host}:{port}", other_agent.handoff_address)
    return cls(
        AgentConfig(BOB, HOST, 0, keying=keying(ALICE), auto_answer=True,
                    audio=AudioOptions(tone_hz=1000)),
        TransferSettings(device, DEVICE_KEY, BOB, devices, announce_timeout=2.0,
                         transfer_timeout=transfer_timeout),
        reinvite_policy=reinvites)


@asynccontextmanager
async def three_parties(transfer_timeout: float = 8.0, *,
                        alice_reinvites: ReinvitePolicy | None = None,
                        laptop_reinvites: ReinvitePolicy | None = None,
                        pda_class: type[TransferAgent] = TransferAgent,
                        laptop_class: type[TransferAgent] = TransferAgent,
                        ) -> AsyncIterator[Parties]:
    """Alice in a call with the laptop; the PDA idle; laptop and PDA know each other."""
    alice = TransferAgent(
        AgentConfig(ALICE, HOST, 0, keying=keying(BOB), auto_answer=True,
                    audio=AudioOptions(tone_hz=440)),
        TransferSettings("alice", bytes(32), ALICE, transfer_timeout=transfer_timeout),
        reinvite_policy=alice_reinvites)
    pda = _bob("pda", "laptop", None, transfer_timeout, cls=pda_class)
    agents = [alice, pda]
    try:
        await alice.start()
        await pda.start()
        laptop = _bob("laptop", "pda", pda, transfer_timeout, reinvites=laptop_reinvites,
                      cls=laptop_class)
        agents.append(laptop)
        await laptop.start()
        pda.transfer = TransferSettings(
            "pda", DEVICE_KEY, BOB,
            {"laptop": DeviceEntry(f"sip:bob@{HOST}:{laptop.sip.local_address[1]}",
                                   laptop.handoff_address)},
            announce_timeout=2.0, transfer_timeout=transfer_timeout)
        laptop.config.contacts = {sip_identity(ALICE): alice.sip.local_address}
        call_id = await laptop.place(ALICE)
        await next_of(laptop, CallConnected)
        await next_of(alice, CallConnected)
        yield Parties(alice, laptop, pda, call_id)
    finally:
        for agent in agents:
            await agent.close()
