"""A secure call with a daemon that runs under the unit's restrictions (issue 7).

Bob's laptop daemon runs in its namespace under tests/service/restricted.py: the
service user (no capabilities, empty bounding set, ``NoNewPrivileges``), a read-only
file system but for its runtime directory, private /tmp, hidden homes,
``MemoryDenyWriteExecute`` and the seccomp filter of ``SystemCallFilter=@system-service
~@privileged @resources`` with ``RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
AF_NETLINK``. Alice's daemon runs normally. The laptop calls Alice (MIKEY PSK, RFC
3830 §3.1; SRTP, RFC 3711) through its control socket, media flows both ways with no
authentication failure, and the laptop roams (netlink under the filter) and hangs up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from mobilityd.service.demo import established_call, place_and_answer, roam_laptop, wait_until
from mobilityd.service.demo_agents import DemoAgents, find_agents_dir, write_config
from mobilityd.service.demo_world import DemoWorld
from mobilityd.service.protocol import Op
from tests.service.restricted import restricted_argv, service_ids, unit_syscalls
from tests.service.test_demo import REPO

pytestmark = pytest.mark.netns


def laptop_call(agents: DemoAgents) -> dict[str, Any]:
    calls = agents.calls("laptop")
    assert len(calls) == 1
    return calls[0]


def test_restricted_daemon_completes_a_secure_call_and_a_roam(tmp_path: Path) -> None:
    assert subprocess.run(["/usr/bin/python3", "-c", "import seccomp"], capture_output=True,
                          check=False, timeout=60).returncode == 0, \
        "python3-seccomp is missing: apt-get install python3-seccomp"
    uid, gid, _ = service_ids()
    base = Path(tempfile.mkdtemp(prefix="mobilityd-rcall-", dir="/run"))  # not /tmp
    base.chmod(0o755)
    run, stash = base / "run", base / "stash"
    run.mkdir()
    os.chown(run, uid, gid)
    stash.mkdir()
    world = DemoWorld()
    agents = DemoAgents(world, base, tmp_path, socket_dir=run)
    try:
        world.build()
        agents.start(("correspondent",))  # makes the keys of all three agents
        config = write_config(find_agents_dir(), base, "laptop", "debug")
        for path in (base / "laptop", base / "laptop" / "keys"):
            path.chmod(0o755)
        for key in (base / "laptop" / "keys").iterdir():
            os.chown(key, uid, gid)
        config.chmod(0o644)
        syscalls = base / "syscalls"
        syscalls.write_text("\n".join(unit_syscalls()) + "\n")
        syscalls.chmod(0o644)
        probe = ('status = open("/proc/self/status").read()\n'
                 'assert "NoNewPrivs:\\t1" in status and "CapEff:\\t0000000000000000" in status\n')
        code = probe + ("from mobilityd.service.daemon import main\n"
                        f"raise SystemExit(main(['--config', {str(config)!r}, '--socket', "
                        f"{str(agents.socket('laptop'))!r}, '--tone', '440']))")
        argv = restricted_argv(code, [run], uid, gid, extra_env={"PYTHONPATH": str(REPO)},
                               seccomp_list=syscalls, stash_dir=stash)
        log = open(tmp_path / "laptop.log", "wb")  # noqa: SIM115 - closed by agents.stop()
        agents.attach("laptop", subprocess.Popen(world.command_in("laptop", argv),
                                                 stdout=log, stderr=log), log)
        status = agents.request("laptop", Op.STATUS)
        assert os.stat(f"/proc/{status['pid']}").st_uid == uid

        place_and_answer(agents)
        wait_until("media both ways", lambda: all(
            (c.get("srtp") or {}).get("rx", {}).get("packets", 0) > 25
            for c in (laptop_call(agents), agents.calls("correspondent")[0])))
        call = laptop_call(agents)
        assert call["key_agreement"] == "psk" and call["state"] == "established"
        roam_laptop(agents, world)
        srtp = laptop_call(agents)["srtp"]
        assert srtp["same_sessions"] is True
        assert srtp["rx"]["auth_failures"] == 0
        call_id = established_call(agents, "laptop")
        assert call_id is not None
        agents.request("laptop", Op.HANGUP, call=call_id)
        wait_until("the call ended", lambda: not agents.calls("correspondent"))
        codes = agents.stop()
    finally:
        if any(p.poll() is None for p in agents.processes.values()):
            agents.stop()
        world.close()
        shutil.rmtree(base, ignore_errors=True)
    log_text = (tmp_path / "laptop.log").read_text(errors="replace")
    assert codes == {"correspondent": 0, "laptop": 0}, log_text[-3000:]
    assert "<6>call.call-connected" in log_text and "<6>call.moved" in log_text
