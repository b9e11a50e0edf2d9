"""SIGHUP (issue 7): a changed ``[[devices]]`` list reaches the running transfer agent
for the next move (new, removed and changed devices), a call in flight is untouched, and
what the hand-off channel fixes at start is reported as restart-required
(``mobilityd.service.reload``); so is ``[registrar]``; ``[mobility]`` reaches the path
monitor; ``[media]`` reaches the call agent for the next call (nothing logged as
"not applied"). Loopback: Alice on
127.0.0.1, Bob's laptop on 127.0.0.2, his PDA on 127.0.0.3; the laptop runs the daemon's
own call manager."""

from __future__ import annotations

import asyncio
import io
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import pytest

from mobilityd.call.media_options import MediaOptions
from mobilityd.call.ports import MediaPortRange
from mobilityd.service.bus import EventBus
from mobilityd.service.calls_roaming import RoamingCallManager
from mobilityd.service.config import Config, load_config
from mobilityd.service.daemon import Daemon
from mobilityd.service.errors import ConfigError, ControlError, ErrorCode
from mobilityd.service.logging import FIELDS_ATTR, JournalFormatter
from mobilityd.service.reload import (
    device_restart_required,
    registrar_restart_required,
)
from mobilityd.service.sdnotify import Notifier
from tests.mobility.test_transfer_manager import DEVICE_HEX, IPS, PSK_HEX, free_port

Devices = Mapping[str, tuple[str, int | None]]  # name -> (ip, sip port); None: default


def _secret(path: Path, value: str) -> str:
    path.write_text(value + "\n")
    os.chmod(path, 0o600)
    return path.name


def write_config(tmp: Path, role: str, ports: dict[str, int], devices: Devices,
                 *, own_handoff: int | None = None) -> Path:
    """``role``'s configuration listing ``devices`` (none for Alice)."""
    user, peer = ("alice", "bob") if role == "alice" else ("bob", "alice")
    peer_contact = (f"sip:alice@{IPS['alice']}:{ports['alice']}" if role != "alice"
                    else f"sip:bob@{IPS['laptop']}:{ports['laptop']}")
    identity = f'uri = "sip:{user}@example.org"\n'
    listing = ""
    if role != "alice":
        identity += (f'device = "{role}"\n'
                     f'device_secret_file = "{_secret(tmp / "dev.key", DEVICE_HEX)}"\n')
        for name, (ip, port) in devices.items():
            listing += (f'\n[[devices]]\nname = "{name}"\n'
                        f'contact = "sip:bob@{ip}:{port or 5060}"\n')
            if name == role and own_handoff is not None:
                listing += f'handoff = "{ip}:{own_handoff}"\n'
    path = tmp / f"{role}.toml"
    path.write_text(f"""
[identity]
{identity}
[[peers]]
name = "{peer}"
uri = "sip:{peer}@example.org"
contact = "{peer_contact}"
psk_file = "{_secret(tmp / f'{role}.psk', PSK_HEX)}"
{listing}
[sip]
bind = "{IPS[role]}"
port = {ports[role]}

[control]
socket = "{tmp / (role + '.sock')}"
""")
    return path


async def until(what: str, predicate: Callable[[], Awaitable[bool]],
                timeout: float = 10.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not await predicate():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"{what}: not after {timeout} s") from None


def _device_configs(tmp: Path, ports: dict[str, int]) -> dict[str, Config]:
    """Started with, and reloaded to: laptop + tablet (no such host) -> laptop + pda."""
    (tmp / "before").mkdir()
    (tmp / "after").mkdir()
    before = {"laptop": (IPS["laptop"], ports["laptop"]), "tablet": ("127.0.0.9", None)}
    after = {"laptop": (IPS["laptop"], ports["laptop"]), "pda": (IPS["pda"], ports["pda"])}
    return {"before": load_config(write_config(tmp / "before", "laptop", ports, before)),
            "after": load_config(write_config(tmp / "after", "laptop", ports, after))}


async def test_reloaded_devices_reach_the_next_move_and_spare_the_running_call(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ports = {role: free_port(ip) for role, ip in IPS.items()}
    laptop_configs = _device_configs(tmp_path, ports)
    pda_devices = {"laptop": (IPS["laptop"], ports["laptop"]), "pda": (IPS["pda"], ports["pda"])}
    for role in ("alice", "pda"):
        (tmp_path / role).mkdir()
    managers = {
        "alice": RoamingCallManager(load_config(write_config(
            tmp_path / "alice", "alice", ports, {})), EventBus()),
        "laptop": RoamingCallManager(laptop_configs["before"], EventBus()),
        "pda": RoamingCallManager(load_config(write_config(
            tmp_path / "pda", "pda", ports, pda_devices)), EventBus()),
    }
    for manager in managers.values():
        await manager.start()
    alice, laptop, pda = managers["alice"], managers["laptop"], managers["pda"]
    try:
        placed = await laptop.place("ignored", "alice")

        async def ringing() -> bool:
            return [c["state"] for c in await alice.list_calls()] == ["ringing"]

        await until("alice rings", ringing)
        await alice.answer(placed["id"])

        async def established() -> bool:
            calls = await laptop.list_calls()
            return bool(calls) and calls[0]["state"] == "established"

        await until("call established", established)
        with pytest.raises(ControlError) as info:
            await laptop.move(placed["id"], "pda")  # not in the file the daemon started with
        assert info.value.code is ErrorCode.NO_SUCH_DEVICE
        (before,) = await laptop.list_calls()

        with caplog.at_level(logging.INFO, logger="mobilityd.roaming"):
            laptop.reconfigure(laptop_configs["after"])  # what SIGHUP does
        assert [getattr(r, FIELDS_ATTR) for r in caplog.records
                if r.getMessage() == "transfer.devices_updated"] == [{"devices": "pda"}]

        (after,) = await laptop.list_calls()  # the call in flight: untouched
        assert (after["id"], after["state"], after["srtp"]["tx"]["ssrc"]) == (
            before["id"], "established", before["srtp"]["tx"]["ssrc"])
        assert after["srtp"]["same_sessions"] is True
        with pytest.raises(ControlError) as info:
            await laptop.move(placed["id"], "tablet")  # removed by the reload
        assert info.value.code is ErrorCode.NO_SUCH_DEVICE
        moved = await laptop.move(placed["id"], "pda")  # added by the reload
        assert moved["transferred"] is True and moved["device"] == "pda"

        async def on_pda() -> bool:
            return [c["state"] for c in await pda.list_calls()] == ["established"]

        await until("the call is up on the PDA", on_pda)
    finally:
        for manager in managers.values():
            await manager.close()


def test_device_list_changes_apply_live(tmp_path: Path) -> None:
    ports = {"alice": 5060, "laptop": 5062, "pda": 5064}
    configs = _device_configs(tmp_path, ports)
    assert device_restart_required(configs["before"], configs["after"]) == ()
    (tmp_path / "none").mkdir()
    alone = load_config(write_config(tmp_path / "none", "laptop", ports, {}))
    assert device_restart_required(configs["before"], alone) == ()  # moves refused


def test_devices_added_to_a_daemon_started_without_any_need_a_restart(tmp_path: Path) -> None:
    """No other device at start: no hand-off channel was opened (docs/transfer.md)."""
    ports = {"alice": 5060, "laptop": 5062, "pda": 5064}
    configs = _device_configs(tmp_path, ports)
    (tmp_path / "none").mkdir()
    alone = load_config(write_config(tmp_path / "none", "laptop", ports, {}))
    assert device_restart_required(alone, configs["after"]) == ("devices",)


def test_own_handoff_port_change_needs_a_restart(tmp_path: Path) -> None:
    ports = {"alice": 5060, "laptop": 5062, "pda": 5064}
    devices: Devices = {"laptop": (IPS["laptop"], 5062), "pda": (IPS["pda"], 5064)}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    default = load_config(write_config(tmp_path / "a", "laptop", ports, devices))
    same = load_config(write_config(tmp_path / "b", "laptop", ports, devices,
                                    own_handoff=5072))  # = SIP port + 10: no change
    assert device_restart_required(default, same) == ()
    moved = load_config(write_config(tmp_path / "b", "laptop", ports, devices,
                                     own_handoff=6000))
    assert device_restart_required(default, moved) == ("devices.laptop.handoff",)


def test_daemon_reload_reports_and_logs_device_restart_keys(tmp_path: Path) -> None:
    """The reload result (``status.restart_required``) and the ``<4>`` log line."""
    ports = {"alice": 5060, "laptop": 5062, "pda": 5064}
    path = write_config(tmp_path, "laptop", ports, {})
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JournalFormatter())
    daemon_log = logging.getLogger("mobilityd.daemon")
    daemon_log.addHandler(handler)
    daemon_log.setLevel(logging.INFO)

    async def reload_once() -> tuple[str, ...]:
        daemon = Daemon(load_config(path), Notifier(None))
        write_config(tmp_path, "laptop", ports,
                     {"laptop": (IPS["laptop"], 5062), "pda": (IPS["pda"], 5064)})
        outcome = daemon.reload()
        assert outcome.ok and daemon.state.pending_restart == outcome.restart_required
        assert [d.name for d in daemon.state.config.devices] == ["laptop", "pda"]
        return outcome.restart_required

    try:
        assert asyncio.run(reload_once()) == ("devices",)
    finally:
        daemon_log.removeHandler(handler)
    assert any(line.startswith("<4>config.restart_required setting=devices ")
               for line in lines.getvalue().splitlines())


def test_registrar_changes_are_reported_for_a_restart(tmp_path: Path) -> None:
    """The registration and the outbound proxy run from the start-up configuration."""
    ports = {"alice": 5060, "laptop": 5062, "pda": 5064}
    path = write_config(tmp_path, "laptop", ports, {})
    plain = load_config(path)
    path.write_text(path.read_text() + '\n[registrar]\nuri = "sip:example.org"\n')
    registered = load_config(path)
    path.write_text(path.read_text().replace('"sip:example.org"', '"sip:example.org:5070"')
                    + "expires = 300\n")
    moved = load_config(path)
    assert registrar_restart_required(plain, plain) == ()
    assert registrar_restart_required(plain, registered) == ("registrar",)
    assert registrar_restart_required(registered, plain) == ("registrar",)
    assert registrar_restart_required(registered, moved) == ("registrar.uri",
                                                             "registrar.expires")


async def test_mobility_settings_reach_the_running_path_monitor(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``[mobility]`` applies live: the next route choice, move and lost path use it."""
    ports = {"alice": free_port(IPS["alice"]), "laptop": free_port(IPS["laptop"]), "pda": 1}
    path = write_config(tmp_path, "laptop", ports, {})
    manager = RoamingCallManager(load_config(path), EventBus())
    await manager.start()
    try:
        assert manager.roaming_problem is None
        path.write_text(path.read_text() + '\n[mobility]\ngrace_period = 5\nhold_down = 0.25\n'
                        'interface_preference = ["eth*"]\ninterface_avoid = ["wwan*"]\n')
        with caplog.at_level(logging.INFO, logger="mobilityd.roaming"):
            manager.reconfigure(load_config(path))
    finally:
        await manager.close()
    assert [getattr(r, FIELDS_ATTR) for r in caplog.records
            if r.getMessage() == "roaming.settings_updated"] == [
        {"grace_period": 5.0, "hold_down": 0.25, "prefer": "eth*", "avoid": "wwan*"}]


@pytest.mark.parametrize(("codecs", "problem"), [
    ('["PCMU", "G722"]', "G722 not implemented"), ("[]", "at least one codec"),
    ('["PCMA", "pcma"]', "twice"),
])
def test_media_codecs_we_do_not_implement_are_refused(tmp_path: Path, codecs: str,
                                                      problem: str) -> None:
    """A codec the call machinery cannot offer is a configuration error naming the key,
    never silently dropped (RFC 3264 §6.1 preference list)."""
    path = write_config(tmp_path, "laptop", {"alice": 5060, "laptop": 5062, "pda": 5064}, {})
    default = load_config(path)
    assert default.media.codecs == ("PCMU", "PCMA")  # what the daemon always offered
    path.write_text(path.read_text() + f"\n[media]\ncodecs = {codecs}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "media.codecs" in str(info.value) and problem in str(info.value)


async def test_media_settings_reach_the_call_agent_on_reload(tmp_path: Path) -> None:
    """``[media]`` applies live, for new calls: port range (RFC 3550 §11), codec
    preference (RFC 3264 §6.1), ``a=ptime`` (RFC 8866 §6.4)."""
    ports = {"alice": free_port(IPS["alice"]), "laptop": free_port(IPS["laptop"]), "pda": 1}
    path = write_config(tmp_path, "laptop", ports, {})
    manager = RoamingCallManager(load_config(path), EventBus())
    await manager.start()
    try:
        agent = manager.agent
        assert agent is not None
        assert agent.config.media == MediaOptions(MediaPortRange(16384, 16483), (0, 8), 20)
        path.write_text(path.read_text() + '\n[media]\nrtp_port_min = 20000\n'
                        'rtp_port_max = 20100\ncodecs = ["pcma"]\nptime_ms = 30\n')
        manager.reconfigure(load_config(path))
        assert agent.config.media == MediaOptions(MediaPortRange(20000, 20100), (8,), 30)
    finally:
        await manager.close()


def test_daemon_reload_of_media_reports_nothing_not_applied(tmp_path: Path) -> None:
    ports = {"alice": 5060, "laptop": 5062, "pda": 5064}
    path = write_config(tmp_path, "laptop", ports, {})
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JournalFormatter())
    daemon_log = logging.getLogger("mobilityd.daemon")
    daemon_log.addHandler(handler)
    daemon_log.setLevel(logging.INFO)

    async def reload_once() -> tuple[str, ...]:
        daemon = Daemon(load_config(path), Notifier(None))
        path.write_text(path.read_text() + '\n[media]\ncodecs = ["PCMA", "PCMU"]\n'
                        'ptime_ms = 40\n')
        return daemon.reload().restart_required

    try:
        assert asyncio.run(reload_once()) == ()  # applies live: nothing waits for a restart
    finally:
        daemon_log.removeHandler(handler)
    logged = lines.getvalue()
    assert "config.reloaded" in logged and "not_applied" not in logged
