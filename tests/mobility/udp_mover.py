"""A moving UDP sender for end-to-end tests, run *inside* a test host's namespace.

    ip netns exec bob python tests/mobility/udp_mover.py LOCAL PEER PORT SECONDS

Sends one numbered datagram every 20 ms (an RTP-like cadence) from LOCAL to PEER:PORT,
watches the network with :class:`mobilityd.mobility.pathmonitor.PathMonitor`, and on
``CallPathChanged`` rebinds to the new local address at once and goes on sending (the
moving side's step 1 of issue 5). Prints ``ready`` when watching, then one JSON line
per decision (``{"decision", "new_local", "at"}``, ``at`` on CLOCK_MONOTONIC), and
exits after SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import time

from mobilityd.mobility.decision import CallPath
from mobilityd.mobility.events import CallPathChanged
from mobilityd.mobility.pathmonitor import PathMonitor

INTERVAL = 0.020


def bound_socket(local: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in local else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((local, 0))
    sock.setblocking(False)
    return sock


async def main(local: str, peer: str, port: int, seconds: float) -> None:
    monitor = PathMonitor(hold_down=1.0)
    await monitor.start()
    monitor.add_call(CallPath("udp", local, peer, peer))
    sock = bound_socket(local)
    print("ready", flush=True)

    async def send() -> None:
        number = 0
        while True:
            number += 1
            with contextlib.suppress(OSError):  # no route now: lost, as RTP would be
                sock.sendto(number.to_bytes(4, "big"), (peer, port))
            await asyncio.sleep(INTERVAL)

    async def follow() -> None:
        nonlocal sock
        while True:
            for decision in await monitor.next_decisions():
                if isinstance(decision, CallPathChanged):
                    old, sock = sock, bound_socket(decision.new_local)
                    old.close()
                print(json.dumps({"decision": type(decision).__name__,
                                  "new_local": getattr(decision, "new_local", None),
                                  "at": time.monotonic()}), flush=True)

    sender = asyncio.create_task(send())
    follower = asyncio.create_task(follow())
    await asyncio.sleep(seconds)
    sender.cancel()
    follower.cancel()
    monitor.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
