"""Network changes reach ``status`` and ``subscribe`` clients: the daemon runs on a
namespace test host that roams to another subnet (testbed: /work/shared/docs/testbed.md).
Which default-route events a roam produces is the netlink layer's business (tests/net);
here only the mapping is checked, on hand-made events."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from mobilityd.net import events as net
from mobilityd.service.events import AddressChanged, DefaultRouteChanged, LinkChanged
from mobilityd.service.netreport import to_service_event
from tests.netns import Topology
from tests.service.conftest import minimal_toml, write_secret
from tests.service.daemon_harness import REPO, WAIT, NotifySocket, ask

F = net.AddressFlag.PERMANENT


def test_netlink_events_map_to_service_events() -> None:
    added = net.AddressAdded(3, "wlan0", "10.3.0.7", 24, net.AddressFamily.INET, F)
    removed = net.AddressRemoved(3, "wlan0", "2001:db8::7", 64, net.AddressFamily.INET6, F)
    assert to_service_event(added) == AddressChanged("wlan0", None, "10.3.0.7/24")
    assert to_service_event(removed) == AddressChanged("wlan0", "2001:db8::7/64", None)
    assert to_service_event(net.LinkDown(3, "wlan0")) == LinkChanged("wlan0", "down")
    assert to_service_event(net.LinkUp(3, "wlan0")) == LinkChanged("wlan0", "up")
    route = net.DefaultRouteChanged(net.AddressFamily.INET6, None, None, None)
    assert to_service_event(route) == DefaultRouteChanged(6, None, None)
    assert to_service_event(net.AllAddressesLost()) is None


def _events_until(lines: Any, wanted: dict[str, Any]) -> list[dict[str, Any]]:
    """Read event lines until one whose data contains ``wanted``."""
    seen: list[dict[str, Any]] = []
    while True:
        line = lines.readline()
        assert line, f"daemon closed the stream; seen: {seen}"
        event = json.loads(line)
        seen.append(event)
        if all(event.get("data", {}).get(k) == v for k, v in wanted.items()):
            return seen


@pytest.mark.netns
def test_roaming_host_reports_address_and_route_changes(topology: Topology,
                                                        tmp_path: Path) -> None:
    bob, rtr = topology.add_host("bob"), topology.add_router("rtr")
    topology.connect(bob, "b0", rtr, "rb")
    rtr.add_address("rb", "10.2.0.1/24")
    rtr.add_address("rb", "10.3.0.1/24")
    bob.add_address("b0", "10.2.0.2/24")
    bob.add_default_route("10.2.0.1")
    write_secret(tmp_path / "alice.psk")
    (tmp_path / "m.toml").write_text(minimal_toml(tmp_path / "control.sock"))
    notify = NotifySocket(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO), "NOTIFY_SOCKET": notify.env_value}
    daemon = bob.popen([sys.executable, "-m", "mobilityd", "--config",
                        str(tmp_path / "m.toml")], env=env, stderr=open(  # noqa: SIM115
                            tmp_path / "stderr", "w"))
    try:
        notify.wait_for("READY", "1")
        network = ask(tmp_path / "control.sock", op="status")["result"]["network"]
        assert network["available"] is True
        assert {"interface": "b0", "address": "10.2.0.2/24"} in network["addresses"]

        with socket.socket(socket.AF_UNIX) as watcher:
            watcher.settimeout(WAIT)
            watcher.connect(str(tmp_path / "control.sock"))
            watcher.sendall(b'{"v":1,"id":1,"op":"subscribe","events":["address-changed",'
                            b'"default-route-changed","link-changed"]}\n')
            lines = watcher.makefile("rb")
            assert json.loads(lines.readline())["ok"] is True

            # roam to another Wi-Fi network: new subnet, new default route
            bob.del_address("b0", "10.2.0.2/24")
            seen = _events_until(lines, {"old": "10.2.0.2/24"})
            bob.add_address("b0", "10.3.0.7/24")
            seen += _events_until(lines, {"new": "10.3.0.7/24"})
            assert seen[-1] == {"v": 1, "event": "address-changed", "seq": seen[-1]["seq"],
                                "data": {"interface": "b0", "old": None,
                                         "new": "10.3.0.7/24"}}
            assert [e["seq"] for e in seen] == sorted(e["seq"] for e in seen)
            bob.link_down("b0")
            _events_until(lines, {"interface": "b0", "state": "down"})
            bob.link_up("b0")
            _events_until(lines, {"interface": "b0", "state": "up"})

        network = ask(tmp_path / "control.sock", op="status")["result"]["network"]
        assert {"interface": "b0", "address": "10.3.0.7/24"} in network["addresses"]
        daemon.terminate()
        assert daemon.wait(timeout=WAIT) == 0
    finally:
        notify.close()
    log = (tmp_path / "stderr").read_text()
    assert "<6>net.address-changed interface=b0 old=10.2.0.2/24 new=-" in log
    assert "Traceback" not in log and "<3>" not in log
