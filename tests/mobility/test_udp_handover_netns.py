"""End to end on test hosts: Bob sends RTP-like UDP to Alice over eth; eth goes down;
the path monitor inside Bob's namespace decides the move and the sender rebinds to
wlan at once. Checks the stream goes on from the new address with the same sequence;
prints the detection time and the media gap at Alice (never asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.netns import RoamingTopology

pytestmark = pytest.mark.netns
REPO = Path(__file__).resolve().parents[2]
MOVER = Path(__file__).with_name("udp_mover.py")
PORT = 5004

RECEIVER = """
import json, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.settimeout(0.2)
print("ready", flush=True)
end = time.monotonic() + float(sys.argv[2])
log = []
while time.monotonic() < end:
    try:
        data, peer = s.recvfrom(64)
    except socket.timeout:
        continue
    log.append([time.monotonic(), peer[0], int.from_bytes(data[:4], "big")])
print(json.dumps(log), flush=True)
"""


def test_eth_down_stream_moves_to_wlan(roaming: RoamingTopology) -> None:
    alice, bob = roaming.alice, roaming.bob
    env = dict(os.environ, PYTHONPATH=str(REPO))
    receiver = alice.popen([sys.executable, "-c", RECEIVER, str(PORT), "4"],
                           stdout=subprocess.PIPE, text=True)
    mover = bob.popen([sys.executable, str(MOVER), "10.4.0.2", roaming.alice4, str(PORT),
                       "3.5"], stdout=subprocess.PIPE, text=True, env=env)
    assert receiver.stdout is not None and mover.stdout is not None
    assert receiver.stdout.readline().strip() == "ready"
    assert mover.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    down_at = time.monotonic()  # before `ip` starts: the bound includes starting ip
    bob.link_down("b1")
    decisions = [json.loads(line) for line in mover.stdout.read().splitlines() if line]
    arrivals = json.loads(receiver.stdout.read().strip().splitlines()[-1])
    moves = [d for d in decisions if d["decision"] == "CallPathChanged"]
    assert moves and moves[0]["new_local"] == "10.2.0.2"
    old = [a for a in arrivals if a[1] == "10.4.0.2"]
    new = [a for a in arrivals if a[1] == "10.2.0.2"]
    assert old and new, "the stream must arrive from eth first, then from wlan"
    assert new[0][2] > old[-1][2]  # the same sender went on counting
    detection_ms = (moves[0]["at"] - down_at) * 1000
    gap_ms = (new[0][0] - old[-1][0]) * 1000
    lost = new[0][2] - old[-1][2] - 1
    print(f"\nmove decided {detection_ms:.2f} ms after `ip link set b1 down` was started; "
          f"media gap at Alice {gap_ms:.1f} ms ({lost} packets of 20 ms lost)")
