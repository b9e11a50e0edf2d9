"""The critical path of a transfer cut from the parties' stamps
(:mod:`mobilityd.bench.transfer_timeline`): pure function on synthetic stamps."""

from __future__ import annotations

import pytest

from mobilityd.bench.transfer_timeline import Stamp, critical_path, summarize

PDA_IP = "10.71.3.2"


def move_stamps(offset: float = 0.0) -> list[Stamp]:
    """A laptop -> PDA move: (ms after the command, role, CPU ms so far, what)."""
    rows = [
        (0.0, "laptop", 10.0, "move command"),
        (1.0, "laptop", 10.8, "sip> REFER sip:alice@10.71.1.2:5060 SIP/2.0"),
        (1.5, "pda", 5.0, "token_received begin"),
        (3.0, "alice", 20.0, "sip< REFER REFER"),
        (6.0, "alice", 22.5, "sip> INVITE sip:bob@10.71.3.2:5060 SIP/2.0"),
        (6.5, "alice", 23.0, "sip> SIP/2.0 202 Accepted"),
        (8.0, "pda", 5.5, "sip< INVITE INVITE"),
        (9.0, "pda", 6.0, "sip> SIP/2.0 100 Trying"),
        (15.0, "pda", 10.5, "sip> SIP/2.0 200 OK"),
        (16.0, "pda", 10.6, "udp> first to ('10.71.1.2', 4000)"),
        (17.0, "alice", 23.5, "sip< 200 INVITE"),
        (19.0, "alice", 25.0, f"udp> first to ('{PDA_IP}', 5000)"),
        (19.5, "pda", 10.7, "udp< first of ssrc 0x1 from ('10.71.2.2', 6000)"),
        (20.0, "pda", 10.8, "udp< first of ssrc 0x2 from ('10.71.1.2', 4000)"),
    ]
    return [Stamp((at + offset) / 1000, role, cpu / 1000, what)
            for at, role, cpu, what in rows]


def test_segments_add_up_to_the_first_packet() -> None:
    path = critical_path(move_stamps(), 0.0, source="laptop", target="pda",
                         target_ip=PDA_IP, decrypted=0.0205)
    assert path is not None
    walls = {name: round(wall, 3) for name, (wall, _) in path.items()}
    assert walls == {"mover": 1.0, "hop_refer": 2.0, "alice_offer": 3.0, "hop_invite": 2.0,
                     "target_answer": 7.0, "hop_answer": 2.0, "alice_switch": 2.0,
                     "hop_media": 1.0, "target_decrypt": 0.5}
    assert sum(wall for wall, _ in path.values()) == pytest.approx(20.5)
    assert path["target_answer"][1] == pytest.approx(5.0)  # CPU in the same party
    assert path["hop_invite"][1] is None  # a hop has no CPU of its own
    assert path["alice_switch"][1] == pytest.approx(1.5)


def test_stamps_before_the_command_or_missing_ones() -> None:
    earlier = [s for s in move_stamps(-100.0) if s.what != "move command"]
    stamps = sorted(earlier + move_stamps(), key=lambda s: s.at)
    path = critical_path(stamps, 0.0, source="laptop", target="pda", target_ip=PDA_IP,
                         decrypted=0.0205)
    assert path is not None and path["mover"][0] == pytest.approx(1.0)
    no_answer = [s for s in move_stamps() if s.what != "sip> SIP/2.0 200 OK"]
    assert critical_path(no_answer, 0.0, source="laptop", target="pda", target_ip=PDA_IP,
                         decrypted=0.0205) is None


def test_summary_is_the_median_per_segment() -> None:
    paths = [critical_path(move_stamps(), 0.0, source="laptop", target="pda",
                           target_ip=PDA_IP, decrypted=0.0205 + extra) for extra in
             (0.0, 0.001, 0.004)]
    summary = summarize([p for p in paths if p is not None])
    assert summary["target_decrypt"] == {"wall": 1.5, "cpu": None}
    assert summary["alice_offer"] == {"wall": 3.0, "cpu": 2.5}
    assert summarize([]) == {}
