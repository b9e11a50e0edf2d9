"""The demo without root: an unprivileged user namespace (``unshare -Urnm``).

Named network namespaces (``ip netns add``) need to write ``/run/netns`` and to
bind-mount there, which only root of the initial namespaces may do. A user namespace
(user_namespaces(7)) gives an ordinary user a "root" that owns a new network and mount
namespace. The demo re-executes itself there (:func:`reexec_argv`: ``unshare
--user --map-root-user --net --mount``), and :func:`prepare_inside` mounts a private
tmpfs on ``/run`` in its own mount namespace, so that ``ip netns add/exec/del`` work as
they do for root, and the world of :mod:`.demo_world` is built unchanged: four network
namespaces owned by the user namespace, veth pairs, addresses, routes and forwarding,
all invisible outside and gone when the demo's processes exit. The real ``/run`` is
never touched (the tmpfs exists only in the demo's mount namespace).

Whether the kernel allows it (:func:`userns_refusal`): ``user.max_user_namespaces``
must not be 0, Debian's ``kernel.unprivileged_userns_clone`` (older kernels) not 0,
Ubuntu's AppArmor ``kernel.apparmor_restrict_unprivileged_userns`` not 1 (unless a
profile allows ``unshare``), and a probe ``unshare -Urnm true`` must succeed; the
message names the knob that refuses and the ``sysctl`` that would change it.

``mobilityd demo --kamailio`` also needs the agents' domains to resolve to the proxy:
:func:`resolve_names` bind-mounts an ``/etc/hosts`` with those lines, in the user
namespace's mount namespace or, as plain root, in one of the demo's own
(:func:`enter_private_mount_namespace`); the system's file is never written.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

__all__ = ["INSIDE_ENV", "UNSHARE", "Probe", "enter_private_mount_namespace",
           "inside_user_namespace", "prepare_inside", "reexec_argv", "resolve_names",
           "userns_refusal"]

CLONE_NEWNS = 0x00020000
"""unshare(2): a new mount namespace (<sched.h>)."""

INSIDE_ENV = "MOBILITYD_DEMO_USERNS"
"""Set to ``1`` in the re-executed demo (inside the user namespace)."""
UNSHARE = ("unshare", "--user", "--map-root-user", "--net", "--mount")
"""``unshare -Urnm``: new user (this user mapped to root), network and mount namespaces
(util-linux unshare(1)); mounts made inside are private to it."""

Probe = Callable[[Sequence[str]], tuple[int, str]]
"""Runs a command: (exit code, its stderr)."""


def _run(argv: Sequence[str]) -> tuple[int, str]:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, check=False,
                              timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, str(exc)
    return done.returncode, done.stderr.strip()


def _knob(proc: Path, name: str) -> str | None:
    try:
        return (proc / "sys" / name).read_text().strip()
    except OSError:
        return None


def userns_refusal(proc: Path = Path("/proc"), probe: Probe = _run) -> str | None:
    """Why this kernel refuses an unprivileged user namespace, or None if it allows one
    (module docstring). ``proc`` and ``probe`` are injected for the tests."""
    if _knob(proc, "user/max_user_namespaces") == "0":
        return ("user namespaces are disabled on this kernel (user.max_user_namespaces = 0;"
                " an administrator can allow them: sysctl -w user.max_user_namespaces=15000)")
    if _knob(proc, "kernel/unprivileged_userns_clone") == "0":
        return ("unprivileged user namespaces are disabled on this kernel "
                "(kernel.unprivileged_userns_clone = 0; an administrator can allow them: "
                "sysctl -w kernel.unprivileged_userns_clone=1)")
    apparmor = _knob(proc, "kernel/apparmor_restrict_unprivileged_userns") == "1"
    if shutil.which("unshare") is None:
        return "the `unshare` command (Debian package util-linux) is missing"
    code, detail = probe([*UNSHARE, "true"])
    if code == 0:
        return None
    why = f"`unshare -Urnm true` failed: {detail or f'exit {code}'}"
    if apparmor:
        why += ("; AppArmor restricts unprivileged user namespaces "
                "(kernel.apparmor_restrict_unprivileged_userns = 1)")
    return f"this kernel refuses an unprivileged user namespace ({why})"


def inside_user_namespace() -> bool:
    """Whether this process is the demo re-executed by :func:`reexec_argv`."""
    return os.environ.get(INSIDE_ENV) == "1" and os.geteuid() == 0


def reexec_argv(demo_args: Sequence[str]) -> list[str]:
    """The command that runs ``mobilityd demo <demo_args>`` again inside ``unshare``."""
    return [*UNSHARE, "--", sys.executable, "-m", "mobilityd", "demo", *demo_args]


def enter_private_mount_namespace(probe: Probe = _run) -> str | None:
    """Root without a user namespace: give this process a mount namespace of its own
    (unshare(2) ``CLONE_NEWNS``, every mount private), so that :func:`resolve_names`
    touches nobody else's ``/etc/hosts``. Returns why it failed, or None."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        return f"unshare(CLONE_NEWNS): {os.strerror(ctypes.get_errno())}"
    code, detail = probe(["mount", "--make-rprivate", "/"])
    return None if code == 0 else f"mount --make-rprivate /: {detail}"


def resolve_names(names: Mapping[str, str], directory: Path, probe: Probe = _run
                  ) -> str | None:
    """Make ``names`` (host name -> IPv4 address) resolve in this mount namespace, as
    DNS would (RFC 3263 without SRV): ``/etc/hosts`` plus those lines, bind-mounted over
    ``/etc/hosts``. Call it in a private mount namespace only (the user namespace's, or
    :func:`enter_private_mount_namespace`). Returns why it failed, or None."""
    try:
        system = Path("/etc/hosts").read_text()
    except OSError:
        system = "127.0.0.1 localhost\n"
    hosts = directory / "hosts"
    hosts.write_text(system.rstrip("\n") + "\n# mobilityd demo\n" + "".join(
        f"{address} {name}\n" for name, address in names.items()))
    hosts.chmod(0o644)
    code, detail = probe(["mount", "--bind", str(hosts), "/etc/hosts"])
    return None if code == 0 else f"cannot bind the demo's hosts file on /etc/hosts: {detail}"


def prepare_inside(probe: Probe = _run) -> str | None:
    """Give ``ip netns`` a ``/run/netns`` of its own: a tmpfs on ``/run`` in this mount
    namespace only. Returns why it failed, or None."""
    code, detail = probe(["mount", "-t", "tmpfs", "-o", "mode=0755", "mobilityd-demo",
                          "/run"])
    if code != 0:
        return f"cannot mount a private /run in the user namespace: {detail}"
    try:
        Path("/run/netns").mkdir(mode=0o755, exist_ok=True)
    except OSError as exc:
        return f"cannot create /run/netns in the user namespace: {exc}"
    return None
