"""Log secrecy (issue 7): nothing that could reveal key material is ever logged.

Three daemons of ``agents/`` in network namespaces at **debug** level: a secure call
(MIKEY PSK, RFC 3830 §3.1), roams of the laptop (re-INVITEs with the §4.5 update), a
transfer to the PDA and back (REFER, RFC 3515; hand-off tokens), hang-up. The daemons
are the real ``mobilityd`` started through tests/service/test_log_secrecy_keyspy.py,
which records each call's TGK, SRTP master keys and salts (RFC 3830 §4.1.3) and the
PSK-derived message keys (§4.1.4). Every log line is then searched for every 8-octet
window of each secret and of the PSK files, in hex (both cases) and base64 (standard
and URL-safe alphabets, all three alignments).
"""

from __future__ import annotations

import base64
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mobilityd.call.keyload import load_psk
from mobilityd.service.demo import (
    established_call,
    place_and_answer,
    roam_laptop,
    transfer,
    wait_until,
)
from mobilityd.service.demo_agents import DemoAgents
from mobilityd.service.demo_world import DemoWorld
from mobilityd.service.protocol import Op
from tests.service.test_demo import REPO

WINDOW = 8


def forms(secret: bytes) -> set[str]:
    """Every way a log line could show ``secret`` or an 8-octet piece of it."""
    found: set[str] = set()
    for start in range(max(1, len(secret) - WINDOW + 1)):
        piece = secret[start:start + WINDOW]
        found |= {piece.hex(), piece.hex().upper()}
    for shift in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(secret[shift:]).decode().rstrip("=")
            core = text[1:-2]  # the edges depend on neighbouring octets
            if len(core) >= 10:
                found.add(core)
    return found


@pytest.fixture
def world_and_agents(tmp_path: Path) -> Iterator[tuple[DemoWorld, DemoAgents, Path]]:
    world = DemoWorld()
    base = Path(tempfile.mkdtemp(prefix="mobilityd-secrecy-"))
    keys_out = tmp_path / "keys.jsonl"
    agents = DemoAgents(world, base, tmp_path, log_level="debug",
                        daemon_argv=(sys.executable, "-m",
                                     "tests.service.test_log_secrecy_keyspy"),
                        extra_env={"KEYSPY_OUT": str(keys_out), "PYTHONPATH": str(REPO)})
    try:
        world.build()
        agents.start()
        yield world, agents, keys_out
    finally:
        if agents.processes:
            agents.stop()
        world.close()


def scan_logs(agents: DemoAgents, keys_out: Path, *, roamed: bool) -> None:
    secrets: dict[str, bytes] = {}
    for n, line in enumerate(keys_out.read_text().splitlines()):
        for name, value in json.loads(line).items():
            secrets[f"call{n}.{name}"] = bytes.fromhex(value)
    assert any(name.endswith(".tgk") for name in secrets), "the spy saw no call"
    for key_file in [*agents.base.glob("*/keys/*.psk"),
                     *agents.base.glob("*/keys/device.key")]:
        secrets[str(key_file.relative_to(agents.base))] = load_psk(key_file)
    logs = {role: (agents.out / f"{role}.log").read_text(errors="replace")
            for role in agents.processes}
    # the debug lines that carry the most sensitive neighbours: SDP with a=key-mgmt
    # (RFC 4567) and the re-INVITE of the move with its §4.5 update message
    assert all("<7>call.sdp" in logs[role] for role in logs if role != "pda"), logs
    if roamed:
        assert "<7>call.reinvite_received" in logs["correspondent"]
    leaks = [f"{role}: {name} as {form!r} in: {line[:160]}"
             for name, secret in secrets.items() for form in forms(secret)
             for role, text in logs.items() for line in text.splitlines() if form in line]
    assert not leaks, "\n".join(leaks[:20])


def test_the_search_finds_a_key_in_every_encoding() -> None:
    key = bytes(range(100, 132))
    lines = [f"x={key.hex()}", f"X={key[5:20].hex().upper()}",
             "k=" + base64.b64encode(b"\x00" + key).decode(),
             "k=" + base64.urlsafe_b64encode(b"ab" + key).decode()]
    for line in lines:
        assert any(form in line for form in forms(key)), line
    assert not any(form in f"x={bytes(32).hex()}" for form in forms(key))


@pytest.mark.netns
def test_no_key_material_in_debug_logs_of_a_call_a_roam_and_a_transfer(
        world_and_agents: tuple[DemoWorld, DemoAgents, Path]) -> None:
    world, agents, keys_out = world_and_agents
    place_and_answer(agents)
    roam_laptop(agents, world)
    roam_laptop(agents, world, back=True)  # the PDA reaches the laptop at its contact
    transfer(agents, Op.MOVE)
    transfer(agents, Op.PULL)
    call = established_call(agents, "laptop")
    assert call is not None
    agents.request("laptop", Op.HANGUP, call=call)
    wait_until("the call ended", lambda: not agents.calls("correspondent"))
    agents.stop()
    keys = keys_out.read_text().splitlines()
    assert len(keys) >= 4, keys  # laptop, Alice, the PDA's leg, the laptop's new leg
    scan_logs(agents, keys_out, roamed=True)
