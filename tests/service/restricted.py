"""Run a command under (most of) the restrictions of systemd/mobilityd.service without a
running systemd (PID 1 here is not systemd, so ``systemd-run`` cannot be used).

Reproduced, as root, with util-linux only:

- ``User=``: an unprivileged uid/gid (``mobilityd`` if installed, else ``nobody``),
  no supplementary groups (``setpriv --reuid --regid --clear-groups``);
- ``CapabilityBoundingSet=`` / ``AmbientCapabilities=``: empty bounding, inheritable
  and ambient sets (``setpriv --bounding-set=-all --inh-caps=-all``);
- ``NoNewPrivileges=yes`` (``setpriv --no-new-privs``);
- ``UMask=0077``;
- ``ProtectSystem=strict``: a private mount namespace where every system mount is
  remounted read-only and only the runtime/state directories are bind-mounted writable;
- ``PrivateTmp=yes``: fresh tmpfs on /tmp and /var/tmp; ``ProtectHome=yes``: /home
  hidden (and /root, unless the test interpreter lives there);
- ``ProtectKernelTunables=yes``: /proc/sys and /sys read-only;
- ``MemoryDenyWriteExecute=yes``: ``prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN)``
  (Linux >= 6.3), set by :data:`MDWE_PRELUDE` before the daemon is imported.

Not reproduced: the seccomp filters (``SystemCallFilter=``, ``RestrictAddressFamilies=``,
``RestrictNamespaces=``, ``LockPersonality=``, ``RestrictRealtime=``), ``PrivateDevices=``,
``PrivateUsers=``, ``ProtectProc=``/``ProcSubset=``, ``DevicePolicy=``.
"""

from __future__ import annotations

import grp
import os
import pwd
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

READ_ONLY_PREFIXES = ("/usr", "/etc", "/var", "/opt", "/srv", "/work", "/boot", "/run",
                      "/home", "/root", "/lib", "/bin", "/sbin")
PR_SET_MDWE, PR_GET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 66, 1

MDWE_PRELUDE = f"""
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) != 0:
    sys.exit("restricted: prctl(PR_SET_MDWE) failed: kernel older than 6.3?")
"""


def service_ids() -> tuple[int, int, str]:
    """The uid/gid to run as: the packaged ``mobilityd`` user, else ``nobody``."""
    for name in ("mobilityd", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        gid = entry.pw_gid if name == "mobilityd" else grp.getgrnam("nogroup").gr_gid
        return entry.pw_uid, gid, name
    raise AssertionError("neither a 'mobilityd' nor a 'nobody' user exists")


def _mounts() -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as info:
        targets = [line.split()[4] for line in info]
    return [t for t in targets if t == "/" or t.startswith(READ_ONLY_PREFIXES)]


def restricted_argv(python_code: str, writable: Sequence[Path], uid: int, gid: int,
                    extra_env: dict[str, str] | None = None) -> list[str]:
    """``unshare ... setpriv ... python -c CODE`` as described in the module doc."""
    hide = ["/home"]
    if not (sys.base_prefix.startswith("/root") or sys.prefix.startswith("/root")):
        hide.append("/root")
    steps = [f"mount -o remount,bind,ro {shlex.quote(m)} 2>/dev/null || true"
             for m in _mounts()]
    steps += ["mount -o remount,bind,ro /proc/sys 2>/dev/null || mount --bind -o ro "
              "/proc/sys /proc/sys", "mount -o remount,bind,ro /sys 2>/dev/null || true",
              "mount -t tmpfs -o mode=1777 tmpfs /tmp", "mount -t tmpfs -o mode=1777 tmpfs "
              "/var/tmp"]
    steps += [f"mount -t tmpfs -o mode=000 tmpfs {d}" for d in hide if os.path.isdir(d)]
    for path in writable:
        steps.append(f"mount --bind {shlex.quote(str(path))} {shlex.quote(str(path))}")
        steps.append(f"mount -o remount,bind,rw {shlex.quote(str(path))}")
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in (extra_env or {}).items())
    steps.append(
        f"umask 0077; exec env -i PATH=/usr/bin:/bin {env} setpriv --reuid={uid} "
        f"--regid={gid} --clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all "
        f"-- {shlex.quote(sys.executable)} -c {shlex.quote(MDWE_PRELUDE + python_code)}")
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-ec",
            "\n".join(steps)]
