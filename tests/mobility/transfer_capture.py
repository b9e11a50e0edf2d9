"""A packet capture on the router of the transfer test hosts: every SRTP packet that
crosses it, to prove no (SSRC, index) is encrypted twice (issue 6 step 6, RFC 3711
§9.1) from the wire rather than from the parties' own counters.

``python -m tests.mobility.transfer_capture`` runs inside the router's namespace (an
``AF_PACKET`` socket sees every interface there), prints ``ready``, and on SIGTERM or
end of stdin prints one JSON object: ``{"packets": [[ssrc, seq, digest], ...]}`` for
each UDP datagram that looks like RTP (version 2, not an RTCP packet type, RFC 5761
§4). A forwarded packet is seen twice (in and out), with the same bytes.

:func:`index_reuse` then finds every (SSRC, sequence number) carried by two different
ciphertexts: within a capture shorter than a full sequence cycle (65536 packets, 22
minutes at 50 packets/s) that is a second encryption of one index -- a re-sent or
fanned-out packet is the same bytes, hence the same digest, and is not counted.
"""

from __future__ import annotations

import hashlib
import json
import select
import signal
import socket
import sys
from collections import defaultdict
from collections.abc import Iterable

ETH_P_ALL = 0x0003
UDP = 17
RTCP_TYPES = range(192, 224)  # RFC 5761 §4: RTP payload types that would clash


def rtp_fields(ip_packet: bytes) -> tuple[int, int, str] | None:
    """(SSRC, sequence number, digest of the datagram) of an IPv4/UDP/RTP packet."""
    if len(ip_packet) < 20 or ip_packet[0] >> 4 != 4 or ip_packet[9] != UDP:
        return None
    header = (ip_packet[0] & 0x0F) * 4
    payload = ip_packet[header + 8:]
    if len(payload) < 12 or payload[0] >> 6 != 2 or payload[1] in RTCP_TYPES:
        return None
    ssrc = int.from_bytes(payload[8:12], "big")
    seq = int.from_bytes(payload[2:4], "big")
    return ssrc, seq, hashlib.sha256(payload).hexdigest()[:16]


def index_reuse(packets: Iterable[tuple[int, int, str]]) -> list[tuple[int, int]]:
    """Every (SSRC, sequence number) seen with two different ciphertexts."""
    digests: dict[tuple[int, int], set[str]] = defaultdict(set)
    for ssrc, seq, digest in packets:
        digests[ssrc, seq].add(digest)
    return sorted(key for key, seen in digests.items() if len(seen) > 1)


def main() -> int:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
    stop = False

    def stopped(signum: int, frame: object) -> None:
        del signum, frame
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, stopped)
    packets: list[tuple[int, int, str]] = []
    print("ready", flush=True)
    while not stop:
        try:
            ready, _, _ = select.select([sock, sys.stdin], [], [], 0.2)
        except InterruptedError:
            continue
        if sys.stdin in ready and not sys.stdin.readline():
            break
        if sock in ready:
            fields = rtp_fields(sock.recv(65535))
            if fields is not None:
                packets.append(fields)
    print(json.dumps({"packets": packets}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
