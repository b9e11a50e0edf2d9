"""Call transfer between three test hosts (Alice, laptop, PDA in their own network
namespaces, emulated links): real SIP REFER/INVITE/NOTIFY/BYE, MIKEY, SRTP audio
(issue 6). Each test checks Alice's sending SRTP session is the same object throughout,
zero SRTP auth failures anywhere and no SSRC (hence no (SSRC, index)) sent by two
devices under the call's keys (RFC 3711 §9.1); and, from a capture of every RTP
datagram crossing the router, that no (SSRC, index) was sent with two different
ciphertexts."""

from __future__ import annotations

import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mobilityd.media.tone import dominant_frequency, tone_share
from tests.mobility.transfer_capture import index_reuse
from tests.mobility.transfer_hosts import TransferHosts, build_transfer_hosts
from tests.netns import Topology

pytestmark = pytest.mark.netns


@pytest.fixture
def hosts(topology: Topology, request: pytest.FixtureRequest, tmp_path: Path
          ) -> Iterator[TransferHosts]:
    """The three parties in a call (laptop - Alice), each recording what it receives
    to ``tmp_path/<role>.wav``; a capture runs on the router."""
    params: dict[str, Any] = {"start": {}, **getattr(request, "param", {})}
    params["start"] = {"record_dir": str(tmp_path), **params["start"]}
    world = build_transfer_hosts(topology, delay_ms=params.get("delay_ms", 5.0),
                                 loss_pct=params.get("loss_pct", 0.0))
    try:
        world.start(**params.get("start", {}))
        world.start_capture()
        world.call()
        yield world
    finally:
        world.close()


def check_the_wire(world: TransferHosts, streams: int) -> None:
    """RFC 3711 §9.1 on the wire: no (SSRC, sequence number) crossed the router with two
    different ciphertexts (re-sent or fanned-out copies are the same bytes); and the
    capture saw at least ``streams`` SSRCs (Alice's and each device's)."""
    packets = world.stop_capture()
    assert index_reuse(packets) == []
    assert len({ssrc for ssrc, _, _ in packets}) >= streams, "capture saw too few streams"


def tones_heard(recording: Path, candidates: tuple[float, ...]) -> list[float]:
    """The tones of a WAV recording in order, one entry per run of 0.2 s blocks
    dominated (> 60 % of the energy) by one candidate; mixed blocks are skipped."""
    with wave.open(str(recording), "rb") as wav:
        pcm = wav.readframes(wav.getnframes())
    runs: list[float] = []
    for start in range(0, len(pcm) - 3200 + 1, 3200):
        block = pcm[start:start + 3200]
        tone = dominant_frequency(block, candidates)
        if tone_share(block, tone) > 0.6 and (not runs or runs[-1] != tone):
            runs.append(tone)
    return runs


def connected(stats: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in stats["calls"].values() if c["state"] == "connected"]


def move_and_check(world: TransferHosts, source: str, target: str,
                   alice_tx: int | None) -> int:
    mover = world.parties[source]
    mover.send(cmd="move", device=target)
    moved = mover.wait_for("moved", timeout=30)
    assert moved["ok"], moved
    time.sleep(1.0)
    stats = {role: party.stats() for role, party in world.parties.items()}
    (a_call,) = connected(stats["alice"])
    (t_call,) = connected(stats[target])
    assert not connected(stats[source])
    assert a_call["tx_id"] == alice_tx or alice_tx is None
    assert t_call["first_packet_at"] is not None and t_call["frames"] > 10
    assert all(c["auth_failures"] == 0 for s in stats.values() for c in s["calls"].values())
    sent = [ssrc for role in ("laptop", "pda") for c in stats[role]["calls"].values()
            for ssrc in c.get("tx_ssrcs", [])]
    assert len(sent) == len(set(sent)), "two devices sent with one SSRC"
    assert all(c.get("index_reuse_refused", 0) == 0 for s in stats.values()
               for c in s["calls"].values())
    return int(a_call["tx_id"])


def wait_for_wrap(world: TransferHosts, role: str, timeout: float = 10.0) -> int:
    """Poll ``role`` until every stream it sends has ROC >= 1; returns Alice's SSRC."""
    deadline = time.monotonic() + timeout
    while True:
        (call,) = connected(world.parties[role].stats())
        rocs = call["tx_rocs"]
        if rocs and min(rocs.values()) >= 1:
            return int(next(iter(rocs)))
        assert time.monotonic() < deadline, f"{role}'s stream never wrapped: {rocs}"
        time.sleep(0.2)


def test_laptop_to_pda_and_back(hosts: TransferHosts, tmp_path: Path) -> None:
    """There and back; Alice's recording has the laptop's tone (1000 Hz), then the
    PDA's (1500 Hz), then the laptop's again, and the PDA's has Alice's (440 Hz)."""
    time.sleep(0.5)
    alice_tx = move_and_check(hosts, "laptop", "pda", None)
    move_and_check(hosts, "pda", "laptop", alice_tx)
    assert hosts.parties["alice"].stats()["gaps"]
    check_the_wire(hosts, 4)  # Alice, the laptop, the PDA, the laptop again
    assert tones_heard(tmp_path / "alice.wav", (1000, 1500)) == [1000, 1500, 1000]
    assert tones_heard(tmp_path / "pda.wav", (440, 1000, 1500)) == [440]


def test_pda_pulls_the_call(hosts: TransferHosts) -> None:
    """The reverse direction of issue 6 step 1: the PDA asks for the call (a PULL token
    to the laptop, docs/transfer.md) and the laptop moves it there."""
    time.sleep(0.5)
    (a_call,) = connected(hosts.parties["alice"].stats())
    pda = hosts.parties["pda"]
    pda.send(cmd="pull", device="laptop")
    pulled = pda.wait_for("pulled", timeout=30)
    assert pulled["ok"], pulled
    time.sleep(1.0)
    stats = {role: party.stats() for role, party in hosts.parties.items()}
    (p_call,) = connected(stats["pda"])
    assert p_call["frames"] > 10 and not connected(stats["laptop"])
    (a_after,) = connected(stats["alice"])
    assert a_after["tx_id"] == a_call["tx_id"]
    assert all(c["auth_failures"] == 0 for s in stats.values() for c in s["calls"].values())
    check_the_wire(hosts, 3)


@pytest.mark.parametrize("hosts", [{"start": {"roaming": True}}], indirect=True)
def test_transfer_while_the_laptop_roams(hosts: TransferHosts) -> None:
    """The laptop gets a new address and moves the call's media and SIP there
    (verified re-INVITE with a MIKEY update, RFC 3830 §4.5) while it moves the call to
    the PDA: the call ends up on the PDA, Alice's sending session the same object."""
    time.sleep(0.5)
    (a_call,) = connected(hosts.parties["alice"].stats())
    hosts.hosts["laptop"].add_address("e0", "10.71.2.3/24")
    laptop = hosts.parties["laptop"]
    laptop.send(cmd="roam_and_move", ip="10.71.2.3", device="pda")
    moved = laptop.wait_for("moved", timeout=30)
    # the re-INVITE needs one RTT, the transfer two: it is answered before the BYE
    assert moved["ok"] and moved["roamed"] == "ReinviteAccepted", moved
    time.sleep(1.0)
    stats = {role: party.stats() for role, party in hosts.parties.items()}
    (p_call,) = connected(stats["pda"])
    (a_after,) = connected(stats["alice"])
    assert p_call["frames"] > 10 and not connected(stats["laptop"])
    assert a_after["tx_id"] == a_call["tx_id"]
    assert all(c["auth_failures"] == 0 for s in stats.values() for c in s["calls"].values())
    check_the_wire(hosts, 3)


@pytest.mark.parametrize("hosts", [{"start": {"transfer_timeout": 3.0}}], indirect=True)
def test_pda_unreachable_call_stays(hosts: TransferHosts) -> None:
    """The PDA's link loses everything: the hand-off token and Alice's INVITE never
    arrive, her INVITE times out (the parties' transfer_timeout, here 3 s), her NOTIFY
    reports it and the move fails; the call goes on with the laptop, untouched (issue
    6 step 5): same sending session at Alice, audio both ways, no auth failure."""
    time.sleep(0.5)
    (a_call,) = connected(hosts.parties["alice"].stats())
    hosts.links["pda"].set(loss_pct=100.0)
    laptop = hosts.parties["laptop"]
    laptop.send(cmd="move", device="pda")
    moved = laptop.wait_for("moved", timeout=40)
    # the laptop's own transfer timeout, or Alice's NOTIFY 408 if it came first
    assert not moved["ok"] and moved["status"] in (0, 408), moved
    hosts.links["pda"].set(loss_pct=0.0)
    before = {role: connected(hosts.parties[role].stats()) for role in ("alice", "laptop")}
    time.sleep(1.0)
    stats = {role: party.stats() for role, party in hosts.parties.items()}
    (a_after,) = connected(stats["alice"])
    (l_after,) = connected(stats["laptop"])
    assert not connected(stats["pda"])
    assert a_after["tx_id"] == a_call["tx_id"]
    assert a_after["frames"] > before["alice"][0]["frames"] + 20
    assert l_after["frames"] > before["laptop"][0]["frames"] + 20
    assert all(c["auth_failures"] == 0 for s in stats.values() for c in s["calls"].values())
    check_the_wire(hosts, 2)


@pytest.mark.parametrize("hosts", [{"loss_pct": 10.0, "delay_ms": 5.0}], indirect=True)
def test_ten_percent_loss(hosts: TransferHosts) -> None:
    """10 % loss on every link: SIP retransmits, and so does the hand-off channel
    (tokens resent at T1, 2*T1 ...; an INVITE that overtook its EXPECT waits for it).
    A move that still fails (every copy lost within the bounds) fails cleanly: the
    call stays and the user retries."""
    time.sleep(0.5)
    for _ in range(3):
        hosts.parties["laptop"].send(cmd="move", device="pda")
        moved = hosts.parties["laptop"].wait_for("moved", timeout=40)
        if moved["ok"]:
            break
        stats = hosts.parties["alice"].stats()
        assert len(connected(stats)) == 1  # failed move: the call stays
    assert moved["ok"], moved
    time.sleep(1.0)
    stats = {role: party.stats() for role, party in hosts.parties.items()}
    (p_call,) = connected(stats["pda"])
    assert p_call["frames"] > 10
    assert all(c["auth_failures"] == 0 for s in stats.values() for c in s["calls"].values())
    check_the_wire(hosts, 3)


@pytest.mark.parametrize("hosts", [{"start": {"first_sequence": 65500}}], indirect=True)
def test_roc_above_zero(hosts: TransferHosts) -> None:
    """The ROC > 0 case of issue 6: every stream starts at sequence number 65500, so
    Alice's (and the laptop's) stream has wrapped before the move (ROC 1, RFC 3711
    §3.3.1). Alice's offer carries her current ROC in the CS ID map (RFC 3830 §6.1.1),
    the PDA sets it through the ROC shim and decrypts her stream from its first packet:
    zero auth failures on the PDA although every one of her packets there has index
    >= 2^16. Then back to the laptop, after the PDA's own stream wrapped too."""
    alice_ssrc = wait_for_wrap(hosts, "alice")
    wait_for_wrap(hosts, "laptop")
    alice_tx = move_and_check(hosts, "laptop", "pda", None)
    (p_call,) = connected(hosts.parties["pda"].stats())
    assert p_call["rx_rocs"][str(alice_ssrc)] >= 1, p_call["rx_rocs"]
    assert p_call["rx_packets"] > 10 and p_call["auth_failures"] == 0
    wait_for_wrap(hosts, "pda")
    assert wait_for_wrap(hosts, "alice") == alice_ssrc  # her stream never restarted
    move_and_check(hosts, "pda", "laptop", alice_tx)
    stats = {role: party.stats() for role, party in hosts.parties.items()}
    (l_call,) = connected(stats["laptop"])
    assert l_call["rx_rocs"][str(alice_ssrc)] >= 1, l_call["rx_rocs"]
    (a_call,) = connected(stats["alice"])
    # the PDA's stream wrapped while Alice received it: she followed its ROC too
    assert all(roc >= 1 for ssrc, roc in a_call["rx_rocs"].items()
               if int(ssrc) in p_call["tx_ssrcs"]), a_call["rx_rocs"]
    check_the_wire(hosts, 4)  # across the wrap of every stream


def party_stats(hosts: TransferHosts) -> dict[str, dict[str, Any]]:
    return {role: party.stats() for role, party in hosts.parties.items()}


@pytest.mark.parametrize("hosts", [{"start": {"roles": {"pda": {"handoff_drop_in": [0]}}}}],
                         indirect=True)
def test_first_expect_lost(hosts: TransferHosts) -> None:
    """The PDA's hand-off channel loses the first EXPECT (deterministically, the first
    datagram to reach it). Parallel announce: Alice's INVITE reaches the PDA before any
    EXPECT and waits (no 603); the laptop's copy at T1 (RFC 3261 §17.1.2.2 style)
    files the expectation and releases it; the move succeeds."""
    time.sleep(0.5)
    (a_call,) = connected(hosts.parties["alice"].stats())
    move_and_check(hosts, "laptop", "pda", a_call["tx_id"])
    stats = party_stats(hosts)
    assert stats["pda"]["handoff_lost"] == 1
    assert stats["pda"]["invites_held"] == 1 and stats["pda"]["refused"] == []
    assert stats["laptop"]["tokens_resent"] >= 1
    assert stats["pda"]["tokens_dropped"] == 0 and stats["laptop"]["tokens_dropped"] == 0
    check_the_wire(hosts, 3)


@pytest.mark.parametrize("hosts", [{"start": {"parallel_announce": False,
                                              "roles": {"laptop": {"handoff_drop_in": [0]}}}}],
                         indirect=True)
def test_accept_lost(hosts: TransferHosts) -> None:
    """Confirmed announce (the REFER waits for the ACCEPT): the laptop's hand-off channel
    loses the PDA's ACCEPT; the EXPECT's copy is answered from the PDA's cache (the same
    ACCEPT, no second expectation) and the move succeeds."""
    time.sleep(0.5)
    (a_call,) = connected(hosts.parties["alice"].stats())
    move_and_check(hosts, "laptop", "pda", a_call["tx_id"])
    stats = party_stats(hosts)
    assert stats["laptop"]["handoff_lost"] == 1
    assert stats["laptop"]["tokens_resent"] >= 1 and stats["pda"]["tokens_repeated"] >= 1
    assert stats["pda"]["invites_held"] == 0 and stats["pda"]["refused"] == []
    assert stats["pda"]["tokens_dropped"] == 0 and stats["laptop"]["tokens_dropped"] == 0
    check_the_wire(hosts, 3)
