"""The daemon's ``[registrar]`` (mobilityd.service.registrar) against a real Kamailio on
loopback (the demo's configuration, ``demo_kamailio.cfg.tmpl``): the account registers
with the stable instance ID and gets the public GRUU the configuration predicts (RFC 5627
§3.1, §5.2), ``registration-updated`` events and ``status.registration`` follow, and
closing the manager removes the binding (Expires 0, RFC 3261 §10.2.2)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mobilityd.service.bus import EventBus
from mobilityd.service.calls_roaming import RoamingCallManager
from mobilityd.service.config import load_config
from mobilityd.service.demo_kamailio import ProxyLog, kamailio_binary, render_config
from mobilityd.service.events import RegistrationUpdated
from mobilityd.service.registrar import RegistrationReporter, expected_gruu
from tests.service.conftest import write_secret
from tests.sip.peers import free_port

IP = "127.0.0.1"


@pytest.fixture
def kamailio(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """The demo's Kamailio on loopback: (port, its log)."""
    binary = kamailio_binary()
    if binary is None:
        pytest.fail("kamailio not found: install the Debian package 'kamailio'")
    port = free_port(ip=IP)
    config = render_config(tmp_path, ip=IP, port=port)
    log_path = tmp_path / "kamailio.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([binary, "-f", str(config), "-DD", "-E", "-P",
                                    str(tmp_path / "k.pid"), "-m", "32", "-M", "8"],
                                   stdout=log, stderr=log, start_new_session=True)
        try:
            yield port, log_path
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def bob_config(tmp_path: Path, registrar_port: int, sip_port: int = 0) -> Path:
    write_secret(tmp_path / "alice.psk")
    path = tmp_path / "bob.toml"
    path.write_text(f"""
[identity]
uri = "sip:bob@example.org"
device = "laptop"

[[peers]]
name = "alice"
uri = "sip:alice@example.net"
psk_file = "alice.psk"

[registrar]
uri = "sip:{IP}:{registrar_port}"
expires = 120

[sip]
bind = "{IP}"
port = {sip_port or free_port(ip=IP)}

[control]
socket = "{tmp_path / 'bob.sock'}"
""")
    return path


@pytest.mark.interop
async def test_registers_with_the_predicted_gruu_and_unbinds_on_close(
        tmp_path: Path, kamailio: tuple[int, Path]) -> None:
    port, log = kamailio
    bus, reporter = EventBus(), RegistrationReporter()
    bus.attach(reporter)
    events = bus.subscribe(["registration-updated"])
    sip_port = free_port(ip=IP)
    manager = RoamingCallManager(load_config(bob_config(tmp_path, port, sip_port)), bus)
    await manager.start()
    try:
        async with asyncio.timeout(15):
            while True:  # Kamailio may still be starting: the client retransmits
                got = await events.next()
                assert isinstance(got, tuple) and isinstance(got[1], RegistrationUpdated)
                if got[1].state == "registered":
                    break
        status = reporter.to_json()
        assert status is not None
        assert status["state"] == "registered" and status["expires"] == 120
        assert status["contact"] == f"sip:bob@{IP}:{sip_port}"
        assert status["gruu"] == expected_gruu("sip:bob@example.org", "laptop")
        assert status["registrar"] == f"sip:{IP}:{port}"
    finally:
        await manager.close()
    relayed = ProxyLog(log)
    async with asyncio.timeout(5):
        while relayed.count(r"^registered sip:bob@example\.org .*expires=0") < 1:
            await asyncio.sleep(0.05)
    assert relayed.count(r"^registered sip:bob@example\.org .*\+sip\.instance") == 2


async def test_an_unresolvable_registrar_is_reported_and_calls_still_work(
        tmp_path: Path) -> None:
    path = bob_config(tmp_path, 5060)
    path.write_text(path.read_text().replace(f'uri = "sip:{IP}:5060"',
                                             'uri = "sip:registrar.invalid"'))
    manager = RoamingCallManager(load_config(path), EventBus())
    await manager.start()
    try:
        assert manager.available
        assert manager.registration is None
        assert manager.registration_problem is not None
        assert "cannot resolve the registrar 'registrar.invalid'" in (
            manager.registration_problem)
    finally:
        await manager.close()
