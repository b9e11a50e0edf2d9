"""The daemon's CallManager on real call agents over loopback (docs/control-protocol.md):
place by peer name, ringing, answer, established with MIKEY PSK, hang up; events on
the bus; refusals carry the protocol's error codes."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from mobilityd.call.manager import AgentCallManager
from mobilityd.service.bus import EventBus
from mobilityd.service.calls import CallManager
from mobilityd.service.config import Config, load_config
from mobilityd.service.errors import ControlError, ErrorCode

PSK_HEX = "00112233445566778899aabbccddeeff102132435465768798a9babbdcddfe0f"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(tmp: Path, me: str, peer: str, port: int, peer_port: int, *,
                 policy: str = "required") -> Config:
    psk = tmp / f"{me}-{peer}.psk"
    psk.write_text(PSK_HEX + "\n")
    os.chmod(psk, 0o600)
    path = tmp / f"{me}.toml"
    path.write_text(f"""
[identity]
uri = "sip:{me}@example.org"
display_name = "{me}"

[security]
policy = "{policy}"

[[peers]]
name = "{peer}"
uri = "sip:{peer}@example.org"
contact = "sip:{peer}@127.0.0.1:{peer_port}"
psk_file = "{psk.name}"

[sip]
bind = "127.0.0.1"
port = {port}

[control]
socket = "{tmp / (me + '.sock')}"
""")
    return load_config(path)


async def until(predicate: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.01)


async def test_place_answer_hangup_through_the_manager(tmp_path: Path) -> None:
    a_port, b_port = free_port(), free_port()
    a_bus, b_bus = EventBus(), EventBus()
    a_events, b_events = a_bus.subscribe(), b_bus.subscribe()
    alice: CallManager = AgentCallManager(
        write_config(tmp_path, "alice", "bob", a_port, b_port), a_bus)
    bob: CallManager = AgentCallManager(
        write_config(tmp_path, "bob", "alice", b_port, a_port), b_bus)
    await alice.start()
    await bob.start()
    try:
        assert alice.available and bob.available
        placed = await alice.place("ignored", "bob")
        assert placed["state"] == "calling" and placed["peer"] == "sip:bob@example.org"

        async def ringing() -> bool:
            return [c["state"] for c in await bob.list_calls()] == ["ringing"]

        await until(ringing)
        answered = await bob.answer(placed["id"])
        assert answered["key_agreement"] == "psk"

        async def established() -> bool:
            calls = await alice.list_calls()
            return bool(calls) and calls[0]["state"] == "established"

        await until(established)
        call = (await alice.list_calls())[0]
        assert call["srtp_suite"] == "AES_CM_128_HMAC_SHA1_80"
        assert call["local"].startswith("127.0.0.1:") and call["moves"] == []
        with pytest.raises(ControlError) as info:
            await alice.move(placed["id"], "pda")
        assert info.value.code is ErrorCode.NOT_AVAILABLE
        with pytest.raises(ControlError) as info:
            await alice.hangup("no-such")
        assert info.value.code is ErrorCode.NO_SUCH_CALL
        await alice.hangup(placed["id"])

        async def bob_idle() -> bool:
            return await bob.list_calls() == []

        await until(bob_idle)
        with pytest.raises(ControlError) as info:
            await alice.hangup(placed["id"])
        assert info.value.code is ErrorCode.REFUSED
    finally:
        await alice.close()
        await bob.close()
    seen = []
    while True:
        try:
            item = await asyncio.wait_for(b_events.next(), 0.05)
        except TimeoutError:
            break
        seen.append(item[1].to_json()["state"])  # type: ignore[index]
    assert seen == ["ringing", "established", "ended"]
    del a_events


async def test_policy_mismatch_is_published_as_refused(tmp_path: Path) -> None:
    """Alice requires SRTP, Bob's account has security off: 488 (RFC 3264 §6)."""
    a_port, b_port = free_port(), free_port()
    a_bus = EventBus()
    a_events = a_bus.subscribe()
    alice = AgentCallManager(write_config(tmp_path, "alice", "bob", a_port, b_port), a_bus)
    bob = AgentCallManager(write_config(tmp_path, "bob", "alice", b_port, a_port, policy="off"),
                           EventBus())
    await alice.start()
    await bob.start()
    try:
        placed = await alice.place("sip:bob@example.org", None)
        assert alice.agent is not None

        async def ended() -> bool:
            agent = alice.agent
            return agent is not None and agent.call(placed["id"]).state.value == "failed"

        await until(ended)
        assert alice.agent.call(placed["id"]).end_reason.startswith("488")
    finally:
        await alice.close()
        await bob.close()
    states = []
    while True:
        try:
            item = await asyncio.wait_for(a_events.next(), 0.05)
        except TimeoutError:
            break
        states.append(item[1].to_json()["state"])  # type: ignore[index]
    assert states == ["calling", "ended"]


async def test_reconfigure_applies_to_new_calls(tmp_path: Path) -> None:
    """SIGHUP: Bob's new policy (security off) answers the next offer (488)."""
    a_port, b_port = free_port(), free_port()
    alice = AgentCallManager(write_config(tmp_path, "alice", "bob", a_port, b_port),
                             EventBus())
    bob = AgentCallManager(write_config(tmp_path, "bob", "alice", b_port, a_port), EventBus())
    await alice.start()
    await bob.start()
    try:
        bob.reconfigure(write_config(tmp_path, "bob", "alice", b_port, a_port, policy="off"))
        assert bob.agent is not None and bob.agent.config.security.value == "off"
        placed = await alice.place("sip:bob@example.org", None)

        async def refused() -> bool:
            agent = alice.agent
            return agent is not None and agent.call(placed["id"]).state.value == "failed"

        await until(refused)
        assert alice.agent is not None
        assert alice.agent.call(placed["id"]).end_reason.startswith("488")
    finally:
        await alice.close()
        await bob.close()


async def test_unusable_key_file_leaves_calls_not_available(tmp_path: Path) -> None:
    config = write_config(tmp_path, "alice", "bob", free_port(), free_port())
    psk = tmp_path / "alice-bob.psk"
    psk.chmod(0o644)  # readable by others: refused, as ssh refuses such keys
    manager = AgentCallManager(config, EventBus())
    await manager.start()
    assert not manager.available
    with pytest.raises(ControlError) as info:
        await manager.list_calls()
    assert info.value.code is ErrorCode.NOT_AVAILABLE and "0644" in info.value.message
    await manager.close()
