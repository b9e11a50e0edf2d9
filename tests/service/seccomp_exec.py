"""Apply a seccomp filter like the unit's, then exec a command (run by /usr/bin/python3).

Usage: /usr/bin/python3 seccomp_exec.py SYSCALL_LIST_FILE -- COMMAND...

SYSCALL_LIST_FILE holds the allowed syscall names, one per line (the expansion of
``SystemCallFilter=@system-service`` minus ``~@privileged @resources``, computed with
``systemd-analyze syscall-filter`` by tests/service/restricted.py). Everything else fails
with EPERM (``SystemCallErrorNumber=EPERM``); ``socket()`` is allowed only for AF_UNIX,
AF_INET, AF_INET6 and AF_NETLINK (``RestrictAddressFamilies=``); foreign architectures
are refused (``SystemCallArchitectures=native``). Needs no_new_privs already set.
This file uses libseccomp's Python binding (Debian: python3-seccomp), which is not
in the project's virtualenv, so it runs under the system interpreter.
"""

import contextlib
import errno
import os
import socket
import sys

try:
    import seccomp  # type: ignore[import-not-found]  # system package, not in the venv
except ImportError:
    sys.exit("seccomp_exec: python3-seccomp is missing: apt-get install python3-seccomp")

FAMILIES = (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK)


def main() -> None:
    list_file, separator, *command = sys.argv[1:]
    if separator != "--" or not command:
        sys.exit("usage: seccomp_exec.py SYSCALL_LIST_FILE -- COMMAND...")
    with open(list_file, encoding="ascii") as names:
        allowed = [name.strip() for name in names if name.strip()]
    flt = seccomp.SyscallFilter(defaction=seccomp.ERRNO(errno.EPERM))
    for name in allowed:
        if name == "socket":
            continue
        # a name this libseccomp does not know stays denied
        with contextlib.suppress(RuntimeError, ValueError, OSError):
            flt.add_rule(seccomp.ALLOW, name)
    for family in FAMILIES:
        flt.add_rule(seccomp.ALLOW, "socket", seccomp.Arg(0, seccomp.EQ, family))
    flt.load()
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
