"""``mobilityd demo --kamailio``: Kamailio as registrar and Record-Route proxy.

Kamailio (Debian package ``kamailio``) runs in a fourth namespace, ``proxy``
(:data:`PROXY_IP`), with the configuration ``demo_kamailio.cfg.tmpl`` next to this module:
an in-memory location table with GRUUs (RFC 5627), Record-Route on dialog-creating
requests (RFC 3261 §16.6), loose routing of in-dialog requests (§16.12), and digest
authentication of REGISTER (RFC 3261 §22.2, RFC 7616 SHA-256, ``qop=auth``) with a
random password per user made for each run (:func:`ensure_passwords`: one ``0600`` file
per user, which the daemons name in ``[registrar] password_file``); calls are not
challenged (a closed test network). It serves the domains of ``agents/``
(:data:`DOMAINS`); in the demo's network those names resolve to the proxy, as DNS would
make them resolve to each domain's proxy (``/etc/hosts`` in the demo's own mount
namespace, :func:`~mobilityd.service.demo_userns.resolve_names`).

The daemons' configurations change accordingly (:func:`registrar_overrides`): a
``[registrar]`` for the user's domain with its password file, no direct ``contact`` for
peers (requests go to the peer's domain, i.e. through the proxy), and each of Bob's
``[[devices]]`` reached at
its public GRUU (:func:`~mobilityd.service.registrar.expected_gruu`), so that a
transfer's ``Refer-To`` is the PDA's (or the laptop's) GRUU.

Every request Kamailio relays is logged as one ``mobilityd-demo:`` line
(:class:`ProxyLog`), which the demo's checks read: the three registrations, the
laptop's re-REGISTER from Wi-Fi B, the call and its re-INVITEs through the proxy, and
the transfer INVITEs addressed to a GRUU.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from mobilityd.service.demo_world import PROXY_IP, DemoWorld
from mobilityd.service.registrar import expected_gruu

if TYPE_CHECKING:
    from mobilityd.service.demo_agents import DemoAgents

__all__ = [
    "DOMAINS",
    "MISSING_KAMAILIO",
    "PROXY_IP",
    "PROXY_PORT",
    "DemoKamailio",
    "KamailioError",
    "ProxyLog",
    "ensure_passwords",
    "kamailio_binary",
    "password_file",
    "proxy_failures",
    "registered_contact",
    "registrar_overrides",
    "render_config",
    "wait_registered",
]

PROXY_PORT = 5060
DOMAINS = ("example.org", "example.net")
"""Bob's and Alice's domains (``agents/*/mobilityd.toml``)."""
TEMPLATE = Path(__file__).with_name("demo_kamailio.cfg.tmpl")
STOP_TIMEOUT = 5.0
MISSING_KAMAILIO = ("--kamailio needs Kamailio, which is not installed: install the Debian "
                    "package 'kamailio' (apt-get install kamailio), or run the demo without "
                    "--kamailio")
REGISTER_TIMEOUT = 15.0
ROLES = ("correspondent", "laptop", "pda")
USERS = ("alice", "bob")
"""The users of ``agents/`` (the user parts of their AORs): each gets a password."""
BOB_AOR = "sip:bob@example.org"
BOB_DEVICE_OF = {"laptop": "laptop", "pda": "pda"}
"""Daemon role -> Bob's device name (``agents/laptop``, ``agents/pda``)."""


class KamailioError(Exception):
    """Kamailio is missing, its configuration is refused, or it died."""


def kamailio_binary() -> str | None:
    """Kamailio's path (``/usr/sbin`` is not on every user's PATH), or None."""
    return shutil.which("kamailio") or (
        "/usr/sbin/kamailio" if Path("/usr/sbin/kamailio").is_file() else None)


def password_file(base: Path, user: str) -> Path:
    """Where the demo keeps ``user``'s registrar password (:func:`ensure_passwords`)."""
    return base / "registrar-passwords" / f"{user}.password"


def ensure_passwords(base: Path, users: Sequence[str] = USERS) -> dict[str, str]:
    """Each user's registrar password for this run: read from its file under ``base``,
    or made (``secrets.token_urlsafe``, 144 bits) and written with mode ``0600`` first.
    Kamailio's configuration and the daemons' ``password_file`` both come from here,
    whichever starts first."""
    passwords: dict[str, str] = {}
    for user in users:
        path = password_file(base, user)
        if not path.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as out:
                out.write(secrets.token_urlsafe(18) + "\n")
        passwords[user] = path.read_text().strip()
    return passwords


def render_config(directory: Path, ip: str = PROXY_IP, port: int = PROXY_PORT,
                  passwords: dict[str, str] | None = None) -> Path:
    """The demo's Kamailio configuration, written to ``directory`` (mode ``0600``: it
    holds ``passwords``, user -> password; none: REGISTER is not challenged)."""
    aliases = "\n".join(f'alias="{domain}"' for domain in DOMAINS)
    password_lines = "\n".join(
        f'\tif ($tU == "{user}") {{ $var(password) = "{password}"; }}'
        for user, password in (passwords or {}).items())
    text = TEMPLATE.read_text()
    for name, value in {"IP": ip, "PORT": str(port), "ALIASES": aliases,
                        "SECRET": secrets.token_hex(16),
                        "PASSWORD_LINES": password_lines}.items():
        text = text.replace(f"@@{name}@@", value)
    path = directory / "kamailio.cfg"
    path.touch(mode=0o600)
    path.write_text(text)
    return path


def registrar_overrides(text: str, uri: str, devices: dict[str, str],
                        password_path: Path | None = None) -> str:
    """An ``agents/<role>/mobilityd.toml`` (``text``) for the proxy: a ``[registrar]``
    for ``uri``'s domain (with ``password_path`` as its ``password_file``), peers without
    ``contact``, ``devices`` (name -> AOR) at their GRUUs. Raises :class:`KamailioError`
    if the file does not have the expected shape."""
    domain = uri.split("@", 1)[1]
    for name, aor in devices.items():
        pattern = rf'(?m)^(name = "{re.escape(name)}"\n)contact = "[^"]*"'
        text, found = re.subn(pattern, rf'\1contact = "{expected_gruu(aor, name)}"', text)
        if found != 1:
            raise KamailioError(f"no [[devices]] entry {name!r} with a contact to replace")
    # what is left with an IPv4 host is a peer's direct contact
    text, peers = re.subn(r'(?m)^contact = "sips?:[^"@]*@\d+\.\d+\.\d+\.\d+(:\d+)?"[^\n]*\n',
                          "", text)
    if peers < 1:
        raise KamailioError("no [[peers]] contact to remove")
    registrar = f'\n[registrar]\nuri = "sip:{domain}"\nexpires = 600\n'
    if password_path is not None:
        registrar += f'password_file = "{password_path}"\n'
    return text + registrar


@dataclass
class ProxyLog:
    """The ``mobilityd-demo:`` lines of Kamailio's log."""

    path: Path

    def lines(self) -> list[str]:
        try:
            text = self.path.read_text(errors="replace")
        except OSError:
            return []
        return [line.split("mobilityd-demo: ", 1)[1] for line in text.splitlines()
                if "mobilityd-demo: " in line]

    def count(self, pattern: str) -> int:
        regex = re.compile(pattern)
        return sum(1 for line in self.lines() if regex.search(line))


@dataclass
class DemoKamailio:
    """The Kamailio process of the demo (started in the world's ``proxy`` namespace)."""

    world: DemoWorld
    base: Path
    out: Path
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def log(self) -> ProxyLog:
        return ProxyLog(self.out / "kamailio.log")

    def start(self) -> None:
        binary = kamailio_binary()
        if binary is None:
            raise KamailioError(MISSING_KAMAILIO)
        directory = self.base / "kamailio"
        directory.mkdir(parents=True, exist_ok=True)
        config = render_config(directory, passwords=ensure_passwords(self.base))
        check = subprocess.run(self.world.command_in("proxy", [binary, "-c", "-f",
                                                               str(config)]),
                               capture_output=True, text=True, check=False)
        if check.returncode != 0:
            tail = "\n".join((check.stderr or check.stdout).strip().splitlines()[-5:])
            raise KamailioError(f"kamailio refused the demo configuration: {tail}")
        self._log = open(self.out / "kamailio.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.world.command_in("proxy", [binary, "-f", str(config), "-DD", "-E",
                                            "-P", str(directory / "kamailio.pid"),
                                            "-m", "32", "-M", "8"]),
            stdout=self._log, stderr=self._log, start_new_session=True)
        time.sleep(0.3)
        self.check_alive()

    def check_alive(self) -> None:
        """Raise :class:`KamailioError` (with the end of its log) if it exited."""
        if self.process is not None and self.process.poll() is not None:
            tail = "\n".join((self.out / "kamailio.log").read_text(
                errors="replace").strip().splitlines()[-5:])
            raise KamailioError(f"kamailio exited with {self.process.returncode}: {tail}")

    def stop(self) -> None:
        """SIGTERM its process group (we started it in its own session), then SIGKILL."""
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


def registered_contact(agents: DemoAgents, role: str) -> str | None:
    """``role``'s Contact while its registration is ``registered``, else None."""
    found = agents.registration(role)
    return str(found["contact"]) if found.get("state") == "registered" else None


def wait_registered(agents: DemoAgents, roles: Sequence[str] = ROLES,
                    timeout: float = REGISTER_TIMEOUT) -> dict[str, dict[str, Any]]:
    """Wait until every daemon of ``roles`` is registered; check that Bob's devices got
    the GRUUs their ``[[devices]]`` entries name (RFC 5627 §5.2). Raises
    :class:`KamailioError` naming what is missing."""
    deadline = time.monotonic() + timeout
    while True:
        found = {role: agents.registration(role) for role in roles}
        waiting = [role for role, r in found.items() if r.get("state") != "registered"]
        if not waiting:
            break
        if time.monotonic() > deadline:
            states = ", ".join(f"{role}: {found[role].get('state', 'not started')}"
                               for role in waiting)
            raise KamailioError(f"not registered after {timeout:.0f} s ({states})")
        time.sleep(0.1)
    for role in roles:
        if role in BOB_DEVICE_OF:
            expected = expected_gruu(BOB_AOR, BOB_DEVICE_OF[role])
            if found[role].get("gruu") != expected:
                raise KamailioError(f"{role}: the registrar returned the GRUU "
                                    f"{found[role].get('gruu')!r}, not {expected!r}")
    return found


def proxy_failures(log: ProxyLog) -> list[str]:
    """What Kamailio's log must show for the demo to have gone through it."""
    wanted = {
        "the three daemons registered": (r"^registered sip:", 3),
        "the laptop re-registered from Wi-Fi B": (
            r"^registered sip:bob@\S+ contact .* from 10\.3\.0\.2$", 1),
        "the call was routed to Alice's AOR": (r"^initial INVITE .* for sip:alice@example\.net", 1),
        "the roams' re-INVITEs followed the Record-Route": (r"^in-dialog INVITE ", 2),
        "the REFERs followed the Record-Route": (r"^in-dialog REFER ", 2),
        "the transfer INVITE targeted the PDA's GRUU": (
            r"^initial INVITE .* for " + re.escape(expected_gruu(BOB_AOR, "pda")), 1),
        "the pull INVITE targeted the laptop's GRUU": (
            r"^initial INVITE .* for " + re.escape(expected_gruu(BOB_AOR, "laptop")), 1),
    }
    failures = []
    for what, (pattern, at_least) in wanted.items():
        seen = log.count(pattern)
        if seen < at_least:
            failures.append(f"kamailio: {what}: {seen} matching line(s) in kamailio.log, "
                            f"expected at least {at_least}")
    return failures
