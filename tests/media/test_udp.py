"""UdpChannel: drains queued datagrams in batches, survives ICMP errors, closes cleanly."""

from __future__ import annotations

import asyncio
import socket

from mobilityd.media.udp import Address, UdpChannel


async def test_batch_drain_errors_and_close() -> None:
    loop = asyncio.get_running_loop()
    got: list[tuple[bytes, Address]] = []
    errors: list[OSError] = []
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    channel = UdpChannel(loop, sock, lambda data, src: got.append((data, src)), errors.append,
                         batch=8)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    for n in range(20):
        peer.sendto(bytes([n]), channel.local)

    async def wait_for(count: int) -> None:
        while len(got) < count:
            await asyncio.sleep(0.001)

    await asyncio.wait_for(wait_for(20), 5)
    assert [data for data, _ in got] == [bytes([n]) for n in range(20)]
    assert {src for _, src in got} == {peer.getsockname()}

    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    dead = closed.getsockname()
    closed.close()
    channel.sendto(b"x", dead)  # ICMP port unreachable comes back on our socket
    peer.sendto(b"after", channel.local)
    await asyncio.wait_for(wait_for(21), 5)
    assert got[-1][0] == b"after"
    assert all(isinstance(e, OSError) for e in errors)
    channel.close()
    channel.close()
    assert channel.closed
    assert channel.sendto(b"x", peer.getsockname()) is False
    peer.close()
