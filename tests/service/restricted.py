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
- ``PrivateTmp=yes``: fresh tmpfs on /tmp and /var/tmp; ``ProtectHome=yes``: empty
  tmpfs on /home and /root, except that the directories holding the test interpreter,
  virtualenv and checkout (e.g. pyenv's ``/root/.pyenv``) are bind-mounted back
  read-only, since a packaged install runs from /usr;
- ``ProtectKernelTunables=yes``: /proc/sys and /sys read-only;
- ``MemoryDenyWriteExecute=yes``: ``prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN)``
  (Linux >= 6.3), set by :data:`MDWE_PRELUDE` before the daemon is imported.

- with ``seccomp=True``: ``SystemCallFilter=@system-service ~@privileged @resources``
  (EPERM), ``RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK`` and
  ``SystemCallArchitectures=native``, by tests/service/seccomp_exec.py (libseccomp,
  Debian package python3-seccomp) with the syscall lists that ``systemd-analyze
  syscall-filter`` prints.

Not reproduced: ``RestrictNamespaces=``, ``LockPersonality=``, ``RestrictRealtime=``
(also seccomp in systemd, but with argument filters not worth re-deriving here),
``PrivateDevices=``, ``PrivateUsers=``, ``ProtectProc=``/``ProcSubset=``,
``DevicePolicy=``.
"""

from __future__ import annotations

import grp
import os
import pwd
import shlex
import subprocess
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


def syscall_group(name: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """The syscalls of a ``systemd-analyze syscall-filter`` group, nested groups expanded."""
    out = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True,
                         text=True, check=True, timeout=60).stdout
    calls: set[str] = set()
    for line in out.splitlines():
        item = line.strip()
        if not line.startswith("    ") or not item or item.startswith("#"):
            continue
        if item.startswith("@"):
            if item not in seen:
                calls |= syscall_group(item, seen | {name})
        else:
            calls.add(item)
    return calls


def unit_syscalls() -> list[str]:
    """``SystemCallFilter=@system-service`` then ``SystemCallFilter=~@privileged @resources``."""
    allowed = syscall_group("@system-service")
    allowed -= syscall_group("@privileged") | syscall_group("@resources")
    return sorted(allowed)


# Directories the sandbox replaces with an empty tmpfs (ProtectHome, PrivateTmp) and the
# depth at which a needed path below them is kept: /root/.pyenv, /home/USER/x, /tmp/x.
_HIDDEN_DEPTH = {"root": 3, "home": 4, "tmp": 3}
_VAR_TMP_DEPTH = 4  # /var/tmp/x


def _home_dirs_to_keep() -> list[str]:
    """Directories under /root, /home, /tmp or /var/tmp that the test needs although
    ProtectHome and PrivateTmp hide them: the interpreter (e.g. pyenv's ``/root/.pyenv``),
    the virtualenv, the checkout (a CI clone may well live under /tmp). They are bound
    back read-only; a packaged install runs from /usr and needs none of them."""
    repo = Path(__file__).resolve().parents[2]
    keep: list[str] = []
    for path in (sys.base_prefix, sys.prefix, sys.executable, str(repo)):
        parts = Path(os.path.realpath(path)).parts  # ('/', 'root', '.pyenv', ...)
        first = parts[1] if len(parts) > 1 else ""
        depth = _HIDDEN_DEPTH.get(first, 0)
        if first == "var" and len(parts) > 2 and parts[2] == "tmp":
            depth = _VAR_TMP_DEPTH
        if depth and len(parts) >= depth:
            top = str(Path(*parts[:depth]))
            if top not in keep:
                keep.append(top)
    return keep


def restricted_argv(python_code: str, writable: Sequence[Path], uid: int, gid: int,
                    *, extra_env: dict[str, str] | None = None,
                    seccomp_list: Path | None = None, stash_dir: Path) -> list[str]:
    """``unshare ... setpriv ... [seccomp_exec] python -c CODE`` (see the module doc).

    ``stash_dir``: an empty root-owned directory outside the homes, used to carry the
    kept directories (see :func:`_home_dirs_to_keep`) across the homes' tmpfs."""
    steps: list[str] = []
    hidden = [d for d in ("/home", "/root") if os.path.isdir(d)]
    keep = _home_dirs_to_keep()
    stashes = [stash_dir / str(index) for index in range(len(keep))]
    for kept, stash in zip(keep, stashes, strict=True):
        steps += [f"mkdir -p {shlex.quote(str(stash))}",
                  f"mount --bind {shlex.quote(kept)} {shlex.quote(str(stash))}"]
    for home in hidden:
        inside = [(k, st) for k, st in zip(keep, stashes, strict=True)
                  if k.startswith(home + "/")]
        if not inside:
            steps.append(f"mount -t tmpfs -o mode=000,ro tmpfs {home}")
            continue
        steps.append(f"mount -t tmpfs -o mode=0755 tmpfs {home}")
        for kept, stash in inside:
            steps += [f"mkdir -p {shlex.quote(kept)}",
                      f"mount --bind {shlex.quote(str(stash))} {shlex.quote(kept)}",
                      f"mount -o remount,bind,ro {shlex.quote(kept)}"]
        steps.append(f"mount -o remount,ro {home}")
    steps += [f"mount -o remount,bind,ro {shlex.quote(m)} 2>/dev/null || true"
              for m in _mounts() if m not in hidden]
    steps += ["mount -o remount,bind,ro /proc/sys 2>/dev/null || mount --bind -o ro "
              "/proc/sys /proc/sys", "mount -o remount,bind,ro /sys 2>/dev/null || true",
              "mount -t tmpfs -o mode=1777 tmpfs /tmp", "mount -t tmpfs -o mode=1777 tmpfs "
              "/var/tmp"]
    for kept, stash in zip(keep, stashes, strict=True):  # PrivateTmp hid them: bind back
        if kept.startswith(("/tmp/", "/var/tmp/")):
            steps += [f"mkdir -p {shlex.quote(kept)}",
                      f"mount --bind {shlex.quote(str(stash))} {shlex.quote(kept)}",
                      f"mount -o remount,bind,ro {shlex.quote(kept)}"]
    for path in writable:
        steps.append(f"mount --bind {shlex.quote(str(path))} {shlex.quote(str(path))}")
        steps.append(f"mount -o remount,bind,rw {shlex.quote(str(path))}")
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in (extra_env or {}).items())
    seccomp = ""
    if seccomp_list is not None:
        helper = Path(__file__).with_name("seccomp_exec.py")
        seccomp = (f"/usr/bin/python3 {shlex.quote(str(helper))} "
                   f"{shlex.quote(str(seccomp_list))} -- ")
    steps.append(
        f"umask 0077; exec env -i PATH=/usr/bin:/bin {env} setpriv --reuid={uid} "
        f"--regid={gid} --clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all "
        f"-- {seccomp}{shlex.quote(sys.executable)} -c "
        f"{shlex.quote(MDWE_PRELUDE + python_code)}")
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-ec",
            "\n".join(steps)]
