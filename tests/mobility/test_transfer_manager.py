"""move / pull through the daemon's call manager (control operations, docs/
control-protocol.md) with configurations listing the user's devices, over loopback:
Alice on 127.0.0.1, Bob's laptop on 127.0.0.2, his PDA on 127.0.0.3."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from mobilityd.call.manager import AgentCallManager
from mobilityd.service.bus import EventBus
from mobilityd.service.config import Config, load_config
from mobilityd.service.errors import ControlError, ErrorCode

PSK_HEX = "00112233445566778899aabbccddeeff102132435465768798a9babbdcddfe0f"
DEVICE_HEX = "f0e1d2c3b4a5968778695a4b3c2d1e0f0f1e2d3c4b5a69788796a5b4c3d2e1f0"
IPS = {"alice": "127.0.0.1", "laptop": "127.0.0.2", "pda": "127.0.0.3"}


def free_port(ip: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((ip, 0))
        port: int = sock.getsockname()[1]
        return port


def _secret(path: Path, value: str) -> str:
    path.write_text(value + "\n")
    os.chmod(path, 0o600)
    return path.name


def config(tmp: Path, role: str, ports: dict[str, int]) -> Config:
    user, peer = ("alice", "bob") if role == "alice" else ("bob", "alice")
    peer_contact = (f"sip:alice@{IPS['alice']}:{ports['alice']}" if role != "alice"
                    else f"sip:bob@{IPS['laptop']}:{ports['laptop']}")
    identity = f'uri = "sip:{user}@example.org"\ndisplay_name = "{user}"\n'
    devices = ""
    if role != "alice":
        identity += (f'device = "{role}"\n'
                     f'device_secret_file = "{_secret(tmp / "dev.key", DEVICE_HEX)}"\n')
        for name in ("laptop", "pda"):
            devices += (f'\n[[devices]]\nname = "{name}"\n'
                        f'contact = "sip:bob@{IPS[name]}:{ports[name]}"\n')
    path = tmp / f"{role}.toml"
    path.write_text(f"""
[identity]
{identity}
[[peers]]
name = "{peer}"
uri = "sip:{peer}@example.org"
contact = "{peer_contact}"
psk_file = "{_secret(tmp / f'{role}.psk', PSK_HEX)}"
{devices}
[sip]
bind = "{IPS[role]}"
port = {ports[role]}

[control]
socket = "{tmp / (role + '.sock')}"
""")
    return load_config(path)


async def until(predicate: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.02)


async def test_move_and_pull_through_the_manager(tmp_path: Path) -> None:
    ports = {role: free_port(ip) for role, ip in IPS.items()}
    managers = {}
    for role in IPS:
        (tmp_path / role).mkdir()
        managers[role] = AgentCallManager(config(tmp_path / role, role, ports),
                                          EventBus())
    for manager in managers.values():
        await manager.start()
    alice, laptop, pda = managers["alice"], managers["laptop"], managers["pda"]
    try:
        placed = await laptop.place("ignored", "alice")

        async def ringing() -> bool:
            return [c["state"] for c in await alice.list_calls()] == ["ringing"]

        await until(ringing)
        await alice.answer(placed["id"])

        async def established() -> bool:
            calls = await laptop.list_calls()
            return bool(calls) and calls[0]["state"] == "established"

        await until(established)
        with pytest.raises(ControlError) as info:
            await laptop.move(placed["id"], "toaster")
        assert info.value.code is ErrorCode.NO_SUCH_DEVICE
        with pytest.raises(ControlError) as info:
            await alice.move(placed["id"], "pda")
        assert info.value.code is ErrorCode.NOT_AVAILABLE  # Alice lists no devices
        moved = await laptop.move(placed["id"], "pda")
        assert moved == {"call": placed["id"], "from_device": "laptop", "to_device": "pda",
                         "state": "transferred"}

        async def on_pda() -> bool:
            return [c["state"] for c in await pda.list_calls()] == ["established"]

        await until(on_pda)
        (pda_call,) = await pda.list_calls()
        pulled = await laptop.pull(pda_call["id"])
        assert pulled["to_device"] == "laptop"

        async def back_on_laptop() -> bool:
            return "established" in [c["state"] for c in await laptop.list_calls()]

        await until(back_on_laptop)
    finally:
        for manager in managers.values():
            await manager.close()
