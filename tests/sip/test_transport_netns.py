"""The local address disappears mid-dialog (RFC 3261 §18; issue 3 "rebinding"): in a
network namespace, Alice's address is deleted while a call is up; her next send fails
on the old socket, the endpoint moves to the fallback address and sends again, and the
dialog goes on (Bob's answers follow rport/received, RFC 3581 §4)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.netns import Topology, topology

__all__ = ["topology"]

pytestmark = pytest.mark.netns

SCENARIO = r"""
import asyncio, json, os, subprocess
from mobilityd.sip import events as ev
from mobilityd.sip.endpoint import SipEndpoint, TransportOptions
from mobilityd.sip.transport import TransportKind
from mobilityd.sip.uri import NameAddr, SipUri
from mobilityd.sip.useragent import UaConfig

def config(user, host):
    return UaConfig(local_uri=NameAddr.parse(f"<sip:{user}@mobilityd.test>"), host=host,
                    port=0, transport=TransportKind.UDP, contact_user=user)

async def main():
    report = {}
    fallback = TransportOptions(address_fallback=lambda dest: "10.77.0.3")
    alice = await SipEndpoint.open(config("alice", "10.77.0.2"), os.urandom, fallback)
    bob = await SipEndpoint.open(config("bob", "10.77.0.1"), os.urandom)
    bob_host, bob_port = bob.local_address
    call_id = alice.act(lambda ua, now: ua.invite(
        SipUri("sip", user="bob", host=bob_host, port=bob_port), now, body=b"v=0\r\n"))
    incoming = await bob.next_event(ev.IncomingCallReceived)
    bob.act(lambda ua, now: ua.answer_call(incoming.call_id, now, body=b"v=0\r\n"))
    await alice.next_event(ev.CallEstablished)
    report["before"] = list(alice.local_address)
    subprocess.run(["ip", "addr", "del", "10.77.0.2/24", "dev", "d0"], check=True)
    alice.act(lambda ua, now: ua.hangup(call_id, now))
    ended = await bob.next_event(ev.CallEnded)
    report["bob_ended_by_peer"] = ended.by_peer
    mine = await alice.next_event(ev.CallEnded, timeout=10)
    report["alice_ended"] = mine.reason
    report["after"] = list(alice.local_address)
    report["send_failures"] = alice.send_failures
    await alice.close(); await bob.close()
    print(json.dumps(report))

asyncio.run(main())
"""


def test_send_after_the_address_vanished_moves_to_the_fallback(topology: Topology) -> None:
    host = topology.add_host("sipmove")
    # A veth pair inside the one namespace (no dummy driver in every kernel).
    host.run(["ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1"])
    host.link_up("d0")
    host.link_up("d1")
    host.link_up("lo")
    for cidr in ("10.77.0.1/24", "10.77.0.2/24", "10.77.0.3/24"):
        host.add_address("d0", cidr)
    root = str(Path(__file__).resolve().parents[2])
    result = host.run(["env", f"PYTHONPATH={root}", sys.executable, "-c", SCENARIO],
                      timeout=60)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["before"][0] == "10.77.0.2"
    assert report["after"] == ["10.77.0.3", report["before"][1]]  # same port kept
    assert report["send_failures"] >= 1  # the old socket refused the BYE ...
    assert report["bob_ended_by_peer"] is True  # ... which went out via the new one
    assert report["alice_ended"]
