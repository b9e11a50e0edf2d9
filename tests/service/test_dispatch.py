"""The CallManager seam: once call machinery is plugged in, every operation reaches it
with the request's fields, status carries its calls, and its refusals go back typed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mobilityd.service.calls import CallManager
from mobilityd.service.config import Config, load_config
from mobilityd.service.dispatch import Dispatcher
from mobilityd.service.errors import ControlError, ErrorCode
from mobilityd.service.protocol import parse_request
from mobilityd.service.state import DaemonState
from tests.service.conftest import minimal_toml, write_secret

DEVICES = ("\n[[devices]]\nname = 'laptop'\ncontact = 'sip:bob@10.2.0.2'\n"
           "[[devices]]\nname = 'pda'\ncontact = 'sip:bob@10.4.0.2'\n")


class InMemoryCalls:
    """A small CallManager holding call records in a dict: the seam's reference user."""

    def __init__(self) -> None:
        self.calls: dict[str, dict[str, Any]] = {}
        self.log: list[tuple[str, tuple[Any, ...]]] = []
        self.config: Config | None = None

    @property
    def available(self) -> bool:
        return True

    async def start(self) -> None:
        self.log.append(("start", ()))

    def reconfigure(self, config: Config) -> None:
        self.config = config
        self.log.append(("reconfigure", (config.identity.uri,)))

    def _call(self, call: str) -> dict[str, Any]:
        if call not in self.calls:
            raise ControlError(ErrorCode.NO_SUCH_CALL, f"no call {call!r}", "call")
        return self.calls[call]

    async def list_calls(self) -> list[dict[str, Any]]:
        return list(self.calls.values())

    async def place(self, uri: str, peer: str | None) -> dict[str, Any]:
        call = {"id": f"c{len(self.calls) + 1}", "peer": uri, "state": "calling"}
        self.calls[call["id"]] = call
        self.log.append(("place", (uri, peer)))
        return call

    async def answer(self, call: str) -> dict[str, Any]:
        return self._call(call)

    async def reject(self, call: str, reason: str | None) -> dict[str, Any]:
        self.log.append(("reject", (call, reason)))
        return self.calls.pop(self._call(call)["id"])

    async def hangup(self, call: str) -> dict[str, Any]:
        return self.calls.pop(self._call(call)["id"])

    async def move(self, call: str, device: str) -> dict[str, Any]:
        self._call(call)
        self.log.append(("move", (call, device)))
        return {"call": call, "to_device": device}

    async def pull(self, call: str) -> dict[str, Any]:
        raise ControlError(ErrorCode.REFUSED, "this device already holds the call", "call")

    async def close(self) -> None:
        self.log.append(("close", ()))


@pytest.fixture
def dispatcher(make_config: Callable[..., Path], tmp_path: Path) -> Dispatcher:
    write_secret(tmp_path / "device.key")
    text = minimal_toml(tmp_path / "c.sock") + DEVICES
    path = make_config(text.replace('display_name = "Bob"',
                                    'display_name = "Bob"\ndevice_secret_file = "device.key"'))
    calls: CallManager = InMemoryCalls()
    return Dispatcher(DaemonState(load_config(path), 0.0, 0.0), calls, clock=lambda: 1.0)


async def _run(dispatcher: Dispatcher, line: str) -> Any:
    return await dispatcher.handle(parse_request(line.encode()))


async def test_operations_reach_the_call_manager(dispatcher: Dispatcher) -> None:
    calls = dispatcher.calls
    assert isinstance(calls, InMemoryCalls)
    placed = await _run(dispatcher, '{"v":1,"id":1,"op":"place","uri":"sip:alice@x.org",'
                                    '"peer":"alice"}')
    assert placed == {"id": "c1", "peer": "sip:alice@x.org", "state": "calling"}
    status = await _run(dispatcher, '{"v":1,"id":2,"op":"status"}')
    assert status["calls"] == {"available": True, "count": 1, "list": [placed]}
    moved = await _run(dispatcher, '{"v":1,"id":3,"op":"move","call":"c1","device":"pda"}')
    assert moved == {"call": "c1", "to_device": "pda"}
    await _run(dispatcher, '{"v":1,"id":4,"op":"reject","call":"c1","reason":"busy"}')
    assert calls.log == [("place", ("sip:alice@x.org", "alice")), ("move", ("c1", "pda")),
                         ("reject", ("c1", "busy"))]
    assert await _run(dispatcher, '{"v":1,"id":5,"op":"calls"}') == []


async def test_refusals_from_the_call_manager_are_typed(dispatcher: Dispatcher) -> None:
    with pytest.raises(ControlError) as info:
        await _run(dispatcher, '{"v":1,"id":1,"op":"hangup","call":"c9"}')
    assert (info.value.code, info.value.field) == (ErrorCode.NO_SUCH_CALL, "call")
    with pytest.raises(ControlError) as info:
        await _run(dispatcher, '{"v":1,"id":2,"op":"pull","call":"c9"}')
    assert info.value.code is ErrorCode.REFUSED
    with pytest.raises(ControlError) as info:  # checked before the manager is asked
        await _run(dispatcher, '{"v":1,"id":3,"op":"move","call":"c1","device":"fridge"}')
    assert (info.value.code, info.value.field) == (ErrorCode.NO_SUCH_DEVICE, "device")
