"""The handover benchmark's frames-lost count (``mobilityd.bench.handover``): Alice's
frames, by RTP sequence number (RFC 3550 §5.1), that Bob never received across a move.
The log rows are what the roaming party records: (time, source address, sequence)."""

from __future__ import annotations

from mobilityd.bench.handover import _frames_lost


def test_nothing_lost_when_the_next_frame_comes_from_the_new_address() -> None:
    # RTT 0: the gap is one packet interval, but no frame is missing
    log = [[0.00, "10.4.0.2", 7], [0.02, "10.4.0.2", 8], [0.04, "10.2.0.2", 9],
           [0.06, "10.2.0.2", 10]]
    assert _frames_lost(log, 0.03) == 0


def test_frames_in_flight_on_the_old_path_are_counted() -> None:
    log = [[0.00, "10.4.0.2", 7], [0.05, "10.2.0.2", 10], [0.07, "10.2.0.2", 11]]
    assert _frames_lost(log, 0.01) == 2  # 8 and 9 never arrived


def test_a_frame_re_sent_on_the_switch_counts_as_received() -> None:
    # 9 was lost on the old path and re-sent by Alice on her switch, ahead of 10
    log = [[0.00, "10.4.0.2", 7], [0.045, "10.2.0.2", 9], [0.05, "10.2.0.2", 10]]
    assert _frames_lost(log, 0.01) == 1  # only 8


def test_sequence_numbers_wrap() -> None:
    log = [[0.00, "a", 65534], [0.05, "b", 0], [0.07, "b", 1]]
    assert _frames_lost(log, 0.01) == 1  # 65535


def test_old_duplicates_are_ignored_and_missing_sides_give_none() -> None:
    log = [[0.00, "a", 100], [0.05, "b", 99], [0.06, "b", 101]]
    assert _frames_lost(log, 0.01) == 0
    assert _frames_lost(log, -1.0) is None  # nothing before the move
    assert _frames_lost(log, 1.0) is None  # nothing after it
    assert _frames_lost([], 0.0) is None
