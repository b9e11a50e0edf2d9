"""``status`` metrics and the event stream of real calls between daemons in namespaces.

Two daemons of ``agents/`` (Alice and Bob's laptop, :mod:`mobilityd.service.demo_world`)
in network namespaces, driven through their control sockets only: the laptop calls
Alice (MIKEY PSK, RFC 3830 §3.1, in the INVITE, RFC 4567 §3.1), then roams from Wi-Fi A
to Wi-Fi B. Checked (issue 7 "Metrics"): per call the key-agreement mode, the SRTP
suite, streams with packets / lost / auth failures / replays, local and remote
addresses, the move history with measured gaps, the SRTP evidence (same sessions, same
SSRC, packet index running on, RFC 3711 §3.3.1); and a subscriber of each daemon
receives call-state-changed, address-changed and call-moved events.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mobilityd.service.client import ControlClient
from mobilityd.service.demo import place_and_answer, roam_laptop, wait_until
from mobilityd.service.demo_agents import DemoAgents
from mobilityd.service.demo_world import LAPTOP_WIFI_B, DemoWorld
from mobilityd.service.protocol import EventMessage, Op, Reply

pytestmark = pytest.mark.netns


@dataclass
class TwoDaemons:
    world: DemoWorld
    agents: DemoAgents
    out: Path


@pytest.fixture
def two_daemons(tmp_path: Path) -> Iterator[TwoDaemons]:
    world = DemoWorld()
    base = Path(tempfile.mkdtemp(prefix="mobilityd-metrics-"))
    agents = DemoAgents(world, base, tmp_path)
    try:
        world.build()
        agents.start(("correspondent", "laptop"))
        yield TwoDaemons(world, agents, tmp_path)
    finally:
        if agents.processes:
            agents.stop()
        world.close()


def events_until(client: ControlClient, wanted: str) -> list[EventMessage]:
    """Read subscription events until one named ``wanted`` arrives."""
    seen: list[EventMessage] = []
    while True:
        message = client.receive()
        if isinstance(message, EventMessage):
            seen.append(message)
            if message.event == wanted:
                return seen


def subscribe(path: Path) -> ControlClient:
    client = ControlClient(path, timeout=20.0)
    reply = client.request(Op.SUBSCRIBE)
    assert isinstance(reply, Reply) and reply.ok, reply
    return client


def the_call(agents: DemoAgents, role: str) -> dict[str, Any]:
    status = agents.request(role, Op.STATUS)
    assert status["calls"]["available"] is True and status["calls"]["count"] == 1
    call: dict[str, Any] = status["calls"]["list"][0]
    return call


def test_status_shows_security_streams_addresses_and_moves(two_daemons: TwoDaemons) -> None:
    agents, world = two_daemons.agents, two_daemons.world
    laptop_events = subscribe(agents.socket("laptop"))
    alice_events = subscribe(agents.socket("correspondent"))
    place_and_answer(agents)
    wait_until("media flows both ways", lambda: all(
        (the_call(agents, r)["srtp"]["rx"] or {}).get("packets", 0) > 20
        for r in ("laptop", "correspondent")))
    before = {role: the_call(agents, role) for role in ("laptop", "correspondent")}
    for call in before.values():
        assert call["state"] == "established"
        assert call["key_agreement"] == "psk"
        assert call["srtp_suite"] == "AES_CM_128_HMAC_SHA1_80"
        assert call["local"] and call["remote"]
        (stream,) = call["streams"]
        assert set(stream) >= {"ssrc", "packets_sent", "packets_received", "lost",
                               "auth_failures", "replays"}
        assert stream["packets_received"] > 0 and stream["auth_failures"] == 0
        assert call["moves"] == []
    assert before["laptop"]["local"].startswith("10.2.0.2:")
    states = events_until(laptop_events, "call-state-changed")
    assert states[-1].data["state"] in ("calling", "established")

    roam_laptop(agents, world)
    wait_until("Alice recorded the verified move with its gap", lambda: any(
        m["gap_ms"] is not None for m in the_call(agents, "correspondent")["moves"]))
    wait_until("media flows again on the laptop", lambda: (
        the_call(agents, "laptop")["srtp"]["rx"]["packets"]
        > before["laptop"]["srtp"]["rx"]["packets"] + 20))
    after = {role: the_call(agents, role) for role in ("laptop", "correspondent")}

    (move,) = after["laptop"]["moves"]
    assert move["kind"] == "roam" and move["from"] == "10.2.0.2"
    assert move["to"].startswith(LAPTOP_WIFI_B)
    (peer_move,) = after["correspondent"]["moves"]
    assert peer_move["kind"] == "peer-roam" and peer_move["from"].startswith("peer at 10.2.0.2:")
    assert peer_move["to"].startswith(f"peer at {LAPTOP_WIFI_B}:") and peer_move["gap_ms"] > 0
    assert 0 < move["gap_ms"] < 5000
    assert after["laptop"]["local"].startswith(f"{LAPTOP_WIFI_B}:")
    assert after["correspondent"]["remote"].startswith(f"{LAPTOP_WIFI_B}:")
    for role in ("laptop", "correspondent"):
        srtp, first = after[role]["srtp"], before[role]["srtp"]
        assert srtp["same_sessions"] is True
        assert srtp["tx"]["ssrc"] == first["tx"]["ssrc"]
        assert srtp["rx"]["ssrc"] == first["rx"]["ssrc"]
        assert srtp["tx"]["first_index"] == first["tx"]["first_index"]
        assert srtp["tx"]["last_index"] > first["tx"]["last_index"]
        assert srtp["tx"]["last_index"] - srtp["tx"]["first_index"] + 1 == srtp["tx"]["packets"]
        assert srtp["rx"]["auth_failures"] == 0 and srtp["rx"]["replays"] == 0
        timeline = after[role]["timeline"]
        # every packet received since the call was connected is in some 20 ms bin
        # (the last bin not sampled yet and packets before CallConnected excepted)
        assert timeline["bin_ms"] == 20
        assert srtp["rx"]["packets"] - 25 <= sum(timeline["received"]) <= srtp["rx"]["packets"]

    laptop_seen = events_until(laptop_events, "call-moved")
    names = {e.event for e in laptop_seen}
    assert "address-changed" in names
    moved = laptop_seen[-1].data
    assert moved["old_address"] == "10.2.0.2" and moved["gap_ms"] > 0
    alice_seen = events_until(alice_events, "call-moved")
    assert any(e.event == "call-state-changed" and e.data["state"] == "established"
               for e in alice_seen)
    laptop_events.close()
    alice_events.close()
