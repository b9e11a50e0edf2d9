"""systemd integration: the unit passes ``systemd-analyze verify`` and ``security``
(exposure <= 2.0), the sysusers.d entry creates the user, and the daemon really runs
under the unit's restrictions (as far as they can be applied without systemd as PID 1:
see tests/service/restricted.py for what is and is not reproduced)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.conftest import PSK_HEX
from tests.service.daemon_harness import REPO, WAIT, NotifySocket, ask
from tests.service.restricted import restricted_argv, service_ids, unit_syscalls

UNIT = REPO / "systemd" / "mobilityd.service"
SYSUSERS = REPO / "systemd" / "sysusers.d" / "mobilityd.conf"
MAX_EXPOSURE = 2.0


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: apt-get install systemd (CI: scripts/setup.sh)"
    return path


@pytest.fixture
def unit_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointed at this checkout's interpreter (which exists)."""
    text = UNIT.read_text()
    exec_start = (f"ExecStart={sys.executable} -m mobilityd --config "
                  "/etc/mobilityd/mobilityd.toml")
    text, count = re.subn(r"^ExecStart=.*$", exec_start, text, flags=re.M)
    assert count == 1
    path = tmp_path / "mobilityd.service"
    path.write_text(text)
    return path


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_unit_declares_the_required_settings() -> None:
    s = unit_settings()
    assert s["Type"] == ["notify"]
    assert s["ExecStart"] == ["/usr/bin/mobilityd --config /etc/mobilityd/mobilityd.toml"]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["User"] == ["mobilityd"]
    for key in ("RuntimeDirectory", "StateDirectory", "ConfigurationDirectory"):
        assert s[key] == ["mobilityd"]
    assert s["CapabilityBoundingSet"] == [""]
    assert s["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6 AF_NETLINK"]
    assert "@system-service" in s["SystemCallFilter"]
    assert s["UMask"] == ["0077"]
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices",
                "MemoryDenyWriteExecute", "LockPersonality", "RestrictRealtime",
                "RestrictSUIDSGID", "ProtectClock", "ProtectHostname", "ProtectControlGroups",
                "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs"):
        assert s[key] == ["yes"], key
    assert s["ProtectSystem"] == ["strict"]
    assert "WatchdogSec" in s
    assert "IPAddressDeny" not in s  # it needs the network


def test_systemd_analyze_verify_is_clean(unit_copy: Path) -> None:
    out = subprocess.run([_tool("systemd-analyze"), "verify", str(unit_copy)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert "mobilityd" not in out.stderr, out.stderr


def test_systemd_analyze_security_exposure(unit_copy: Path) -> None:
    out = subprocess.run([_tool("systemd-analyze"), "security", "--offline=true",
                          "--no-pager", str(unit_copy)], capture_output=True, text=True,
                         timeout=120, check=False)
    match = re.search(r"Overall exposure level for mobilityd\.service: (\d+\.\d+)", out.stdout)
    assert match, out.stdout + out.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, out.stdout


def test_sysusers_creates_the_service_user(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    out = subprocess.run([_tool("systemd-sysusers"), f"--root={root}", str(SYSUSERS)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    passwd = (root / "etc" / "passwd").read_text()
    entry = next(line for line in passwd.splitlines() if line.startswith("mobilityd:"))
    fields = entry.split(":")
    assert int(fields[2]) < 1000  # a system user
    assert fields[5] == "/var/lib/mobilityd" and fields[6] == "/usr/sbin/nologin"
    assert "mobilityd:" in (root / "etc" / "group").read_text()


@pytest.fixture
def service_tree() -> Iterator[tuple[Path, int, int]]:
    """/run/mobilityd-test-*/{etc,run,state}: root-owned config, service-owned dirs
    (under /run so the test does not depend on /tmp, which the sandbox replaces)."""
    uid, gid, _ = service_ids()
    base = Path(tempfile.mkdtemp(prefix="mobilityd-test-", dir="/run"))
    try:
        base.chmod(0o755)
        for name, owner, mode in (("etc", (0, gid), 0o750), ("run", (uid, gid), 0o750),
                                  ("state", (uid, gid), 0o700), ("stash", (0, 0), 0o755)):
            (base / name).mkdir()
            os.chown(base / name, *owner)
            (base / name).chmod(mode)
        yield base, uid, gid
    finally:
        shutil.rmtree(base, ignore_errors=True)


SECCOMP_PROBE = """
import errno, socket
try:
    socket.socket(socket.AF_ALG, socket.SOCK_SEQPACKET, 0)
except OSError as exc:
    assert exc.errno == errno.EPERM, exc  # RestrictAddressFamilies: refused by the filter
else:
    raise SystemExit("restricted: AF_ALG socket was allowed")
try:
    os.nice(1)  # setpriority is in @resources, removed from the allow list
except PermissionError:
    pass
else:
    raise SystemExit("restricted: setpriority was allowed")
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch user and mount namespace")
@pytest.mark.parametrize("with_seccomp", [False, True], ids=["fs-user-caps-mdwe", "+seccomp"])
def test_daemon_runs_under_the_unit_restrictions(service_tree: tuple[Path, int, int],
                                                 with_seccomp: bool) -> None:
    base, uid, gid = service_tree
    seccomp_list = None
    if with_seccomp:
        assert subprocess.run(["/usr/bin/python3", "-c", "import seccomp"],
                              capture_output=True, check=False, timeout=60).returncode == 0, \
            "python3-seccomp is missing: apt-get install python3-seccomp"
        seccomp_list = base / "etc" / "syscalls"
        seccomp_list.write_text("\n".join(unit_syscalls()) + "\n")
        seccomp_list.chmod(0o644)
    psk = base / "etc" / "alice.psk"
    psk.write_text(PSK_HEX + "\n")
    os.chown(psk, uid, gid)
    psk.chmod(0o600)
    config = base / "etc" / "mobilityd.toml"
    config.write_text(f"""
[identity]
uri = "sip:bob@example.org"
[[peers]]
name = "alice"
uri = "sip:alice@10.1.0.2"
psk_file = "alice.psk"
[control]
socket = "{base / 'run' / 'control.sock'}"
[log]
level = "debug"
""")
    config.chmod(0o644)
    notify = NotifySocket(base / "run")
    os.chmod(notify.env_value, 0o666)
    probe = """
import os
status = open("/proc/self/status").read()
assert "NoNewPrivs:\\t1" in status and "CapEff:\\t0000000000000000" in status, status
assert "CapBnd:\\t0000000000000000" in status, status
for path in ("/etc/mobilityd-probe", os.environ["ETC"] + "/probe", "/var/lib/probe"):
    try:
        open(path, "w").close()
    except OSError:
        continue
    raise SystemExit(f"restricted: {path} is writable")
"""
    if with_seccomp:
        probe += SECCOMP_PROBE
    code = probe + "\nfrom mobilityd.service.daemon import main\n" \
        f"raise SystemExit(main(['--config', {str(config)!r}]))"
    argv = restricted_argv(code, [base / "run", base / "state"], uid, gid,
                           extra_env={"NOTIFY_SOCKET": notify.env_value, "PYTHONPATH": str(REPO),
                            "ETC": str(base / "etc"), "WATCHDOG_USEC": "2000000"},
                           seccomp_list=seccomp_list, stash_dir=base / "stash")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        try:
            ready = notify.wait_for("READY", "1")
        except TimeoutError:
            proc.kill()
            raise AssertionError(f"no READY=1; stderr:\n{proc.communicate()[1]}") from None
        pid = int(ready["MAINPID"])
        assert os.stat(f"/proc/{pid}").st_uid == uid
        sock_stat = (base / "run" / "control.sock").stat()
        assert (sock_stat.st_uid, oct(sock_stat.st_mode & 0o777)) == (uid, "0o660")
        status = ask(base / "run" / "control.sock", op="status")
        assert status["ok"] is True and status["result"]["pid"] == pid
        # netlink (AF_NETLINK) works under the restrictions: the first dump was read
        assert status["result"]["network"]["available"] is True, status["result"]["network"]
        os.kill(pid, signal.SIGHUP)
        assert notify.wait_for("READY", "1")
        assert ask(base / "run" / "control.sock", op="status")["result"]["reloads"] == 1
        os.kill(pid, signal.SIGTERM)
        notify.wait_for("STOPPING", "1")
        _, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        notify.close()
    assert proc.returncode == 0, err
    assert "<6>daemon.stopped" in err
    assert PSK_HEX not in err
    assert not (base / "run" / "control.sock").exists()
