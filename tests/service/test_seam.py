"""The daemon with call machinery plugged in (an in-memory CallManager): operations,
events to subscribers, mobilityctl progress, STATUS= with the call count, reconfigure on
SIGHUP and close on stop -- the integration points issue 7 leaves to the integrator."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from mobilityd.service.bus import EventBus
from mobilityd.service.config import Config, load_config
from mobilityd.service.ctl import EXIT_OK, main
from mobilityd.service.daemon import Daemon
from mobilityd.service.events import CallStateChanged, CallTransferred
from mobilityd.service.sdnotify import Notifier
from tests.service.conftest import minimal_toml, write_secret
from tests.service.daemon_harness import NotifySocket
from tests.service.test_control import Client
from tests.service.test_dispatch import DEVICES, InMemoryCalls


class PublishingCalls(InMemoryCalls):
    """Publishes what a real call manager would: state changes and transfers."""

    def __init__(self, bus: EventBus) -> None:
        super().__init__()
        self.bus = bus

    async def place(self, uri: str, peer: str | None) -> dict[str, Any]:
        call = await super().place(uri, peer)
        self.bus.publish(CallStateChanged(call=call["id"], peer=uri, state="calling"))
        return call

    async def move(self, call: str, device: str) -> dict[str, Any]:
        result = await super().move(call, device)
        self.bus.publish(CallStateChanged(call=call, peer=self.calls[call]["peer"],
                                          state="moving"))
        self.bus.publish(CallTransferred(call=call, from_device="laptop", to_device=device,
                                         gap_ms=87.5))
        return result


@pytest.fixture
async def running(make_config: Callable[..., Path], tmp_path: Path
                  ) -> AsyncIterator[tuple[Daemon, PublishingCalls, NotifySocket, Path]]:
    write_secret(tmp_path / "device.key")
    text = (minimal_toml(tmp_path / "control.sock") + DEVICES).replace(
        'display_name = "Bob"', 'display_name = "Bob"\ndevice = "laptop"\n'
                                'device_secret_file = "device.key"')
    config: Config = load_config(make_config(text))
    notify = NotifySocket(tmp_path)
    notify.sock.setblocking(False)
    bus = EventBus()
    calls = PublishingCalls(bus)
    daemon = Daemon(config, Notifier(notify.env_value), calls=calls, bus=bus)
    task = asyncio.create_task(daemon.run())
    loop = asyncio.get_running_loop()
    ready = await asyncio.wait_for(loop.sock_recv(notify.sock, 4096), 30)
    assert b"READY=1" in ready and b"STATUS=0 calls" in ready
    try:
        yield daemon, calls, notify, tmp_path / "control.sock"
    finally:
        daemon.shutdown.set()
        assert await asyncio.wait_for(task, 30) == 0
        notify.close()
    assert calls.log[-1] == ("close", ())  # calls are ended before the daemon exits
    assert calls.log[0] == ("start", ())


async def _notifications_until(notify: NotifySocket, text: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    while True:
        data = await asyncio.wait_for(loop.sock_recv(notify.sock, 4096), 30)
        if text in data:
            return data


async def test_events_status_and_progress_through_the_daemon(
        running: tuple[Daemon, PublishingCalls, NotifySocket, Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    _, _, notify, socket_path = running
    watcher = await Client.connect(socket_path)
    assert (await watcher.ask(id=1, op="subscribe"))["ok"] is True

    code = await asyncio.to_thread(main, ["--socket", str(socket_path), "place",
                                          "sip:alice@example.net"])
    assert code == EXIT_OK
    assert (await watcher.line())["data"]["state"] == "calling"
    assert b"STATUS=1 call" in await _notifications_until(notify, b"STATUS=")

    code = await asyncio.to_thread(main, ["--socket", str(socket_path), "move", "c1", "pda"])
    assert code == EXIT_OK
    err = capsys.readouterr().err.splitlines()
    progress = [line for line in err if "call-transferred" in line]
    assert progress and "gap_ms=87.5" in progress[0] and "to_device=pda" in progress[0]
    assert err[-1].startswith("move done after ")
    moving, transferred = await watcher.line(), await watcher.line()
    assert moving["data"]["state"] == "moving"
    assert transferred["event"] == "call-transferred"
    assert transferred["data"] == {"call": "c1", "from_device": "laptop", "to_device": "pda",
                                   "gap_ms": 87.5}
    status = await watcher.ask(id=2, op="status")
    assert status["result"]["calls"]["count"] == 1
    await watcher.close()


async def test_sighup_reconfigures_the_call_manager(
        running: tuple[Daemon, PublishingCalls, NotifySocket, Path]) -> None:
    daemon, calls, notify, _ = running
    assert not [entry for entry in calls.log if entry[0] == "reconfigure"]
    os.kill(os.getpid(), signal.SIGHUP)  # the daemon's handler only sets an event
    await _notifications_until(notify, b"READY=1")
    assert ("reconfigure", ("sip:bob@example.org",)) in calls.log
    assert daemon.state.reloads == 1
