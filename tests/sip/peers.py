"""Real peers for the SIP tests: Kamailio, SIPp, and TLS certificates.

Every process is started in its own session with a pid file and killed in teardown by
its process group id (never by name). Ports are picked free by the kernel. A missing
tool makes the test fail with a message naming the Debian package (scripts/setup.sh
installs them in CI).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HERE = Path(__file__).parent
KAMAILIO_TEMPLATE = HERE / "kamailio" / "kamailio.cfg.tmpl"
KAMAILIO_TLS_TEMPLATE = HERE / "kamailio" / "tls.cfg.tmpl"
SIPP_SCENARIOS = HERE / "sipp"
STARTUP_LIMIT = 15.0  # seconds a peer may take to come up before the test fails


def require_tool(name: str, package: str) -> str:
    """The tool's path, or fail the test naming the Debian package to install."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: install the Debian package {package!r} "
                    f"(scripts/setup.sh does this in CI)")
    return path


def free_port(kind: int = socket.SOCK_DGRAM, ip: str = "127.0.0.1") -> int:
    """A port the kernel says is free for ``kind`` on ``ip`` (UDP and TCP checked)."""
    while True:
        with socket.socket(socket.AF_INET, kind) as first:
            first.bind((ip, 0))
            port = int(first.getsockname()[1])
        other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, other) as second:
            try:
                second.bind((ip, port))
            except OSError:
                continue
        return port


def kill_group(process: subprocess.Popen[bytes] | asyncio.subprocess.Process) -> None:
    """SIGKILL the process group we started (its pid is the group id)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


# ---------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Certificates:
    """A throw-away CA and a server certificate it signed (PEM files)."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    server_name: str


def make_certificates(directory: Path, server_name: str = "proxy.mobilityd.test",
                      ips: Sequence[str] = ("127.0.0.1",)) -> Certificates:
    """Generate a CA and a server certificate for ``server_name`` and ``ips``."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mobilityd test CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                     crl_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False,
                                     decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = [x509.DNSName(server_name)]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, server_name)]))
        .issuer_name(ca_name).public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                                              x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    paths = Certificates(directory / "ca.pem", directory / "server.pem",
                         directory / "server.key", server_name)
    paths.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    paths.server_key.write_bytes(server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return paths


# ---------------------------------------------------------------- Kamailio


@dataclass
class Kamailio:
    """A running Kamailio registrar/proxy."""

    ip: str
    udp_port: int
    tcp_port: int
    tls_port: int | None
    domain: str
    users: dict[str, str]
    algorithm: str
    certificates: Certificates | None
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def render_kamailio_config(kamailio: Kamailio, directory: Path) -> Path:
    """Fill the config template; returns the config path."""
    password_lines = "\n".join(
        f'\tif ($au == "{user}") {{ $var(password) = "{password}"; }}'
        for user, password in kamailio.users.items())
    values = {
        "IP": kamailio.ip, "UDP_PORT": str(kamailio.udp_port),
        "TCP_PORT": str(kamailio.tcp_port), "TLS_PORT": str(kamailio.tls_port or 0),
        "DOMAIN": kamailio.domain, "ALGORITHM": kamailio.algorithm,
        "SECRET": secrets.token_hex(16), "PASSWORD_LINES": password_lines,
        "TLS_CONFIG": str(directory / "tls.cfg"),
    }
    text = KAMAILIO_TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace(f"@@{name}@@", value)
    config = directory / "kamailio.cfg"
    config.write_text(text)
    if kamailio.certificates is not None:
        certs = kamailio.certificates
        tls = KAMAILIO_TLS_TEMPLATE.read_text()
        for name, path in {"CERT": certs.server_cert, "KEY": certs.server_key,
                           "CA": certs.ca_cert}.items():
            tls = tls.replace(f"@@{name}@@", str(path))
        (directory / "tls.cfg").write_text(tls)
    return config


def _answers_options(ip: str, port: int) -> bool:
    probe = (f"OPTIONS sip:ping@{ip}:{port} SIP/2.0\r\n"
             f"Via: SIP/2.0/UDP {ip}:9;branch=z9hG4bK-probe-{secrets.token_hex(4)};rport\r\n"
             f"From: <sip:probe@{ip}>;tag=p\r\nTo: <sip:ping@{ip}>\r\n"
             f"Call-ID: probe-{secrets.token_hex(4)}\r\nCSeq: 1 OPTIONS\r\n"
             "Max-Forwards: 5\r\nContent-Length: 0\r\n\r\n").encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((ip, 0))
        sock.settimeout(0.2)
        sock.sendto(probe, (ip, port))
        try:
            return sock.recv(65535).startswith(b"SIP/2.0 ")
        except TimeoutError:
            return False


@contextlib.contextmanager
def run_kamailio(directory: Path, *, ip: str = "127.0.0.1", domain: str = "mobilityd.test",
                 users: dict[str, str] | None = None, algorithm: str = "MD5",
                 tls: bool = False) -> Iterator[Kamailio]:
    """Start Kamailio (checked with ``-c`` first) and always kill it afterwards."""
    binary = require_tool("kamailio", "kamailio")
    if tls and not Path("/usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so").exists():
        pytest.fail("Kamailio's tls module missing: install 'kamailio-tls-modules'")
    directory.mkdir(parents=True, exist_ok=True)
    certificates = make_certificates(directory / "certs", ips=(ip,)) if tls else None
    kamailio = Kamailio(
        ip=ip, udp_port=free_port(socket.SOCK_DGRAM, ip),
        tcp_port=free_port(socket.SOCK_STREAM, ip),
        tls_port=free_port(socket.SOCK_STREAM, ip) if tls else None, domain=domain,
        users=users or {"alice": "alice-secret", "bob": "bob-secret"},
        algorithm=algorithm, certificates=certificates, log=directory / "kamailio.log")
    config = render_kamailio_config(kamailio, directory)
    defines = ["-A", "WITH_TLS"] if tls else []
    check = subprocess.run([binary, "-c", "-f", str(config), *defines],
                           capture_output=True, text=True, check=False)
    if check.returncode != 0:
        pytest.fail(f"kamailio -c rejected the config:\n{check.stderr[-3000:]}")
    pid_file = directory / "kamailio.pid"
    with kamailio.log.open("wb") as log:
        process = subprocess.Popen(
            [binary, "-f", str(config), *defines, "-DD", "-E", "-P", str(pid_file),
             "-w", str(directory), "-Y", str(directory), "-m", "64", "-M", "8"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    kamailio.process = process
    try:
        deadline = time.monotonic() + STARTUP_LIMIT
        while not _answers_options(ip, kamailio.udp_port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"kamailio did not come up:\n{kamailio.log_text()[-3000:]}")
        yield kamailio
    finally:
        kill_group(process)
        process.wait(timeout=10)


# ---------------------------------------------------------------- SIPp


@dataclass
class SippResult:
    """What one SIPp run left behind."""

    returncode: int
    stats: list[dict[str, str]] = field(default_factory=list)
    messages: str = ""
    errors: str = ""
    screen: str = ""

    def last(self, column: str) -> int:
        """An integer column of the last statistics row (e.g. ``FailedCall(C)``)."""
        return int(self.stats[-1][column]) if self.stats else -1


@dataclass
class Sipp:
    """A SIPp process running in the background of the event loop."""

    process: asyncio.subprocess.Process
    directory: Path
    local: tuple[str, int]

    async def wait(self, limit: float = 60.0) -> SippResult:
        """Wait for SIPp to finish (killing it after ``limit`` seconds)."""
        try:
            stdout, _ = await asyncio.wait_for(self.process.communicate(), limit)
        except TimeoutError:
            kill_group(self.process)
            stdout, _ = await self.process.communicate()
        return read_sipp_result(self.directory, self.process.returncode or 0,
                                stdout.decode(errors="replace"))

    def kill(self) -> None:
        if self.process.returncode is None:
            kill_group(self.process)


def read_sipp_result(directory: Path, returncode: int, screen: str) -> SippResult:
    stats: list[dict[str, str]] = []
    for stat_file in directory.glob("stats*.csv"):
        with stat_file.open(newline="") as handle:
            stats = list(csv.DictReader(handle, delimiter=";"))
    text = {name: "".join(p.read_text(errors="replace") for p in directory.glob(pattern))
            for name, pattern in (("messages", "*messages*"), ("errors", "*errors*"))}
    return SippResult(returncode, stats, text["messages"], text["errors"], screen)


async def start_sipp(directory: Path, remote: tuple[str, int] | None, *,
                     scenario: str, local_ip: str = "127.0.0.1", local_port: int | None = None,
                     calls: int = 1, rate: float | None = None, extra: Sequence[str] = (),
                     cpu: int | None = None) -> Sipp:
    """Start SIPp with ``scenario`` (a built-in name like ``uac`` or an XML file name
    in tests/sip/sipp/), statistics and message traces in ``directory``."""
    binary = require_tool("sipp", "sip-tester")
    directory.mkdir(parents=True, exist_ok=True)
    port = local_port or free_port(socket.SOCK_DGRAM, local_ip)
    if scenario.endswith(".xml"):
        scenario_args = ["-sf", str(SIPP_SCENARIOS / scenario)]
    else:
        scenario_args = ["-sn", scenario]
    command = [binary, *scenario_args, "-i", local_ip, "-p", str(port), "-m", str(calls),
               "-nostdin", "-trace_stat", "-stf",
               str(directory / "stats.csv"), "-trace_err", "-error_file",
               str(directory / "errors.log"), "-trace_msg", "-message_file",
               str(directory / "messages.log"), "-timeout", "60", "-timeout_error",
               *extra]
    if rate is not None:
        command += ["-r", str(rate)]
    if remote is not None:
        command.append(f"{remote[0]}:{remote[1]}")
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, cwd=directory, start_new_session=True)
    return Sipp(process, directory, (local_ip, port))


@contextlib.asynccontextmanager
async def sipp(directory: Path, remote: tuple[str, int] | None, **options: object
               ) -> AsyncIterator[Sipp]:
    """``start_sipp`` that always kills SIPp on the way out."""
    process = await start_sipp(directory, remote, **options)  # type: ignore[arg-type]
    try:
        yield process
    finally:
        process.kill()
        with contextlib.suppress(ProcessLookupError):
            await process.process.wait()
