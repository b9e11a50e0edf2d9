"""A UDP relay on the hand-off channel between two agents that loses chosen datagrams
deterministically (the first EXPECT, the first ACCEPT ...): loopback stand-in for a
lossy link, used by tests/mobility/test_transfer_lossy_channel.py."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

Address = tuple[str, int]


@dataclass(eq=False)
class LossyRelay(asyncio.DatagramProtocol):
    """Forwards what a client sends to ``target`` and ``target``'s answers back to the
    client; drops the datagrams whose 0-based index (per direction) is listed."""

    target: Address
    drop_forward: set[int] = field(default_factory=set)
    drop_back: set[int] = field(default_factory=set)
    forwarded: int = 0
    returned: int = 0
    dropped: list[tuple[str, int]] = field(default_factory=list)
    _client: Address | None = None
    _transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls, target: Address, *, drop_forward: set[int] | None = None,
                   drop_back: set[int] | None = None) -> LossyRelay:
        relay = cls(target, drop_forward or set(), drop_back or set())
        relay._transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: relay, local_addr=("127.0.0.1", 0))
        return relay

    @property
    def address(self) -> Address:
        assert self._transport is not None
        host, port = self._transport.get_extra_info("sockname")[:2]
        return host, port

    def datagram_received(self, data: bytes, addr: Any) -> None:
        assert self._transport is not None
        source = (addr[0], addr[1])
        if source == self.target:
            index, self.returned = self.returned, self.returned + 1
            if index in self.drop_back:
                self.dropped.append(("back", index))
            elif self._client is not None:
                self._transport.sendto(data, self._client)
            return
        self._client = source
        index, self.forwarded = self.forwarded, self.forwarded + 1
        if index in self.drop_forward:
            self.dropped.append(("forward", index))
        else:
            self._transport.sendto(data, self.target)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
