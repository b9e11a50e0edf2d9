"""The control server in-process: a real Unix socket, many clients, subscriptions,
bad lines that leave the connection usable (docs/control-protocol.md)."""

from __future__ import annotations

import asyncio
import json
import logging
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from mobilityd.service.bus import EventBus, EventsLost
from mobilityd.service.calls import UnavailableCallManager
from mobilityd.service.config import load_config
from mobilityd.service.control import ControlServer, SocketInUseError
from mobilityd.service.dispatch import Dispatcher
from mobilityd.service.events import CallMoved, ConfigReloaded, SecurityFailed
from mobilityd.service.state import DaemonState


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, path: Path) -> Client:
        return cls(*await asyncio.open_unix_connection(str(path)))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def line(self) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.reader.readline(), 10)
        assert raw, "server closed the connection"
        value: dict[str, Any] = json.loads(raw)
        return value

    async def ask(self, **obj: Any) -> dict[str, Any]:
        await self.send(json.dumps({"v": 1, **obj}).encode() + b"\n")
        return await self.line()

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


@pytest.fixture
async def served(make_config: Callable[..., Path], tmp_path: Path
                 ) -> AsyncIterator[tuple[ControlServer, EventBus]]:
    config = load_config(make_config())
    state = DaemonState(config, started_monotonic=0.0, started_wall=0.0)
    bus = EventBus()
    server = ControlServer(config.control.socket,
                           Dispatcher(state, UnavailableCallManager(), clock=lambda: 5.0),
                           bus, max_clients=8, max_line=4096)
    await server.start()
    try:
        yield server, bus
    finally:
        await server.close()


async def test_socket_mode_is_0660_and_removed_on_close(make_config: Callable[..., Path],
                                                        tmp_path: Path) -> None:
    config = load_config(make_config())
    state = DaemonState(config, 0.0, 0.0)
    server = ControlServer(config.control.socket, Dispatcher(state, UnavailableCallManager()),
                           EventBus())
    await server.start()
    assert stat.S_IMODE(config.control.socket.stat().st_mode) == 0o660
    assert stat.S_ISSOCK(config.control.socket.stat().st_mode)
    await server.close()
    assert not config.control.socket.exists()


async def test_status_then_call_ops_answer_not_available(
        served: tuple[ControlServer, EventBus]) -> None:
    server, _ = served
    client = await Client.connect(server.path)
    status = await client.ask(id=1, op="status")
    assert status["ok"] is True and status["id"] == 1
    assert status["result"]["uptime_s"] == 5.0
    assert status["result"]["identity"]["uri"] == "sip:bob@example.org"
    assert status["result"]["calls"] == {"available": False, "count": 0, "list": []}
    for i, (op, args) in enumerate([("calls", {}), ("place", {"uri": "sip:alice@x.org"}),
                                    ("answer", {"call": "c"}), ("reject", {"call": "c"}),
                                    ("hangup", {"call": "c"}), ("pull", {"call": "c"})]):
        reply = await client.ask(id=10 + i, op=op, **args)
        assert reply["ok"] is False and reply["id"] == 10 + i
        assert reply["error"]["code"] == "not-available", op
    await client.close()


async def test_move_to_unknown_device_names_the_field(
        served: tuple[ControlServer, EventBus]) -> None:
    client = await Client.connect(served[0].path)
    reply = await client.ask(id=1, op="move", call="c", device="toaster")
    assert reply["error"]["code"] == "no-such-device"
    assert reply["error"]["field"] == "device"
    await client.close()


async def test_bad_lines_leave_the_connection_usable(
        served: tuple[ControlServer, EventBus]) -> None:
    client = await Client.connect(served[0].path)
    await client.send(b"{not json\n")
    assert (await client.line())["error"]["code"] == "bad-json"
    await client.send(b"x" * 5000 + b"\n")  # max_line is 4096 in this fixture
    assert (await client.line())["error"]["code"] == "line-too-long"
    assert (await client.ask(id=2, op="fly"))["error"] == {
        "code": "unknown-op", "field": "op",
        "message": "unknown op 'fly' (known: status, calls, place, answer, reject, hangup, "
                   "move, pull, subscribe)"}
    assert (await client.ask(id=3, op="status"))["ok"] is True
    await client.close()


async def test_many_clients_at_once_and_the_limit(
        served: tuple[ControlServer, EventBus]) -> None:
    server, _ = served
    clients = [await Client.connect(server.path) for _ in range(8)]
    replies = await asyncio.gather(*(c.ask(id=i, op="status") for i, c in enumerate(clients)))
    assert [r["id"] for r in replies] == list(range(8))
    extra = await Client.connect(server.path)
    busy = await extra.line()
    assert busy["error"]["code"] == "busy"
    assert await extra.reader.read() == b""
    for c in clients:
        await c.close()


async def test_subscribe_streams_events_in_order_and_filters(
        served: tuple[ControlServer, EventBus]) -> None:
    server, bus = served
    everything = await Client.connect(server.path)
    moves_only = await Client.connect(server.path)
    assert (await everything.ask(id=1, op="subscribe"))["ok"] is True
    reply = await moves_only.ask(id=1, op="subscribe", events=["call-moved"])
    assert reply["result"] == {"subscribed": ["call-moved"]}
    bus.publish(SecurityFailed(call=None, peer="sip:mallory@x", reason="MAC mismatch"))
    bus.publish(CallMoved(call="c1", old_address="10.2.0.2:4000", new_address="10.3.0.7:4000",
                          gap_ms=42.5))
    first, second = await everything.line(), await everything.line()
    assert first["event"] == "security-failed" and first["seq"] == 1
    assert second == {"v": 1, "event": "call-moved", "seq": 2,
                      "data": {"call": "c1", "old_address": "10.2.0.2:4000",
                               "new_address": "10.3.0.7:4000", "gap_ms": 42.5}}
    assert (await moves_only.line())["seq"] == 2
    # requests still work on a subscribed connection, and a second subscribe is refused
    assert (await everything.ask(id=2, op="status"))["ok"] is True
    assert (await everything.ask(id=3, op="subscribe"))["error"]["code"] == "refused"
    bad = await moves_only.ask(id=4, op="subscribe", events=["call-teleported"])
    assert bad["error"]["field"] == "events"
    await everything.close()
    await moves_only.close()
    for _ in range(100):  # the server notices the hang-up and drops the subscription
        if bus.subscriber_count == 0:
            break
        await asyncio.sleep(0.01)
    assert bus.subscriber_count == 0


async def test_a_slow_subscriber_loses_events_and_is_told() -> None:
    bus = EventBus()
    sub = bus.subscribe(maxsize=2)
    for _ in range(5):
        bus.publish(ConfigReloaded(ok=True, restart_required=(), error=None))
    assert await sub.next() == (1, ConfigReloaded(ok=True, restart_required=(), error=None))
    assert (await sub.next())[0] == 2  # type: ignore[index]
    assert await sub.next() == EventsLost(3)
    sub.close()
    assert bus.subscriber_count == 0


async def test_live_socket_is_not_taken_over_but_stale_one_is(
        served: tuple[ControlServer, EventBus], tmp_path: Path) -> None:
    server, bus = served
    state = DaemonState(load_config(tmp_path / "mobilityd.toml"), 0.0, 0.0)
    second = ControlServer(server.path, Dispatcher(state, UnavailableCallManager()), bus)
    with pytest.raises(SocketInUseError, match="another daemon"):
        await second.start()
    await second.close()
    assert server.path.exists()  # the failed start did not remove the live socket
    await server.close()
    stale = tmp_path / "stale.sock"
    import socket
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(stale))
    sock.close()  # bound but nobody listens: what a crashed daemon leaves
    third = ControlServer(stale, Dispatcher(state, UnavailableCallManager()), bus)
    await third.start()
    client = await Client.connect(stale)
    assert (await client.ask(id=1, op="status"))["ok"] is True
    await client.close()
    await third.close()


async def test_close_with_connected_clients_is_clean(
        served: tuple[ControlServer, EventBus], caplog: pytest.LogCaptureFixture) -> None:
    server, bus = served
    idle = await Client.connect(server.path)
    subscribed = await Client.connect(server.path)
    assert (await subscribed.ask(id=1, op="subscribe"))["ok"] is True
    assert (await idle.ask(id=1, op="status"))["ok"] is True
    assert server.client_count == 2
    await server.close()
    assert await idle.reader.read() == b""
    assert await subscribed.reader.read() == b""
    assert server.client_count == 0 and bus.subscriber_count == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def test_a_flooded_connection_reports_lost_events(
        served: tuple[ControlServer, EventBus]) -> None:
    from mobilityd.service.connection import OUTBOUND_LINES

    server, bus = served
    client = await Client.connect(server.path)
    assert (await client.ask(id=1, op="subscribe"))["ok"] is True
    event = ConfigReloaded(ok=True, restart_required=(), error=None)
    for _ in range(OUTBOUND_LINES + 1000):  # synchronous: the writer cannot run meanwhile
        bus.publish(event)
    seqs = [(await client.line())["seq"] for _ in range(OUTBOUND_LINES)]
    assert seqs == list(range(1, OUTBOUND_LINES + 1))
    assert await client.line() == {"v": 1, "event": "events-lost", "seq": 0,
                                   "data": {"count": 1000}}
    bus.publish(event)
    assert (await client.line())["seq"] == OUTBOUND_LINES + 1001
    assert (await client.ask(id=2, op="status"))["ok"] is True
    await client.close()
