"""The daemon configuration: TOML (:mod:`tomllib`) validated into frozen dataclasses.

Default file ``/etc/mobilityd/mobilityd.toml`` (``--config`` overrides it). The tables and
keys are documented in docs/configuration.md, and ``agents/*/mobilityd.toml`` are
complete examples. Every problem raises :class:`~mobilityd.service.errors.ConfigError`
naming the file, the dotted key and what is wrong; secret files with group/other
permission bits are refused (:mod:`mobilityd.service.keyfiles`).

Protocol references: SIP and SIPS URIs RFC 3261 §19.1, GRUUs RFC 5627 §3, MIKEY key
agreement modes RFC 3830 §3.1 (PSK), §3.2 (PKE) and RFC 3830 §3.3 (DH), SRTP suites
RFC 4568 §6.2.1, RTP/RTCP port pairs RFC 3550 §11.
"""

from __future__ import annotations

import enum
import ipaddress
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from mobilityd.service.errors import ConfigError, KeyFileError
from mobilityd.service.keyfiles import (
    KeyFileProblem,
    Secret,
    check_private_file,
    check_public_file,
    read_password,
    read_psk,
)
from mobilityd.service.tomlreader import TableReader
from mobilityd.sip.errors import SipParseError
from mobilityd.sip.uri import SipUri

DEFAULT_CONFIG_PATH = Path("/etc/mobilityd/mobilityd.toml")
DEFAULT_CONTROL_SOCKET = Path("/run/mobilityd/control.sock")

class KeyAgreement(enum.StrEnum):
    """MIKEY key transport/exchange method, RFC 3830 §3."""

    PSK = "psk"  # §3.1 pre-shared key
    PKE = "pke"  # §3.2 public-key encryption
    DH = "dh"  # §3.3 signed Diffie-Hellman


class SecurityPolicy(enum.StrEnum):
    """Whether calls must be, should be, or are not secured with MIKEY + SRTP."""

    REQUIRED = "required"
    PREFERRED = "preferred"
    OFF = "off"


class Transport(enum.StrEnum):
    """SIP transports, RFC 3261 §18."""

    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


class SrtpSuite(enum.StrEnum):
    """SRTP crypto-suite names, RFC 4568 §6.2.1 (RFC 3711 transforms)."""

    AES_CM_128_HMAC_SHA1_80 = "AES_CM_128_HMAC_SHA1_80"
    AES_CM_128_HMAC_SHA1_32 = "AES_CM_128_HMAC_SHA1_32"


class LogLevel(enum.StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Identity:
    """The user (address-of-record) this device acts for, and this device's own keys."""

    uri: str
    display_name: str
    device: str | None
    device_secret_file: Path | None
    certificate: Path | None
    private_key: Path | None


@dataclass(frozen=True)
class Device:
    """One device of the user: a GRUU (RFC 5627 §3) or a direct SIP address, and where
    its hand-off channel is reached (``None``: the convention of
    :func:`mobilityd.mobility.transfer_config.transfer_settings_from`, the contact's host
    and SIP port + 10)."""

    name: str
    contact: str
    handoff: tuple[str, int] | None = None


@dataclass(frozen=True)
class Registrar:
    """Where the account registers (RFC 3261 §10) and, with ``password_file``, the digest
    credentials it answers the registrar's 401/407 with (RFC 3261 §22, RFC 7616):
    ``username`` defaults to the user part of ``identity.uri``; ``realm`` None means
    any realm the registrar names. ``password`` is the file's content, never printed
    (:class:`~mobilityd.service.keyfiles.Secret`); comparing two configurations
    compares it, so a reload notices a changed password file."""

    uri: str
    expires: int
    username: str = ""
    realm: str | None = None
    password_file: Path | None = None
    password: Secret | None = None


@dataclass(frozen=True)
class Peer:
    """A correspondent: ``uri`` is its identity (address-of-record); ``contact``, if set,
    is where requests go without a registrar (direct addressing, RFC 3261 §8.1.2)."""

    name: str
    uri: str
    contact: str | None
    key_agreement: KeyAgreement
    psk_file: Path | None
    certificate: Path | None


@dataclass(frozen=True)
class Security:
    policy: SecurityPolicy
    key_agreement: KeyAgreement
    srtp_suites: tuple[SrtpSuite, ...]
    ca_certificate: Path | None


@dataclass(frozen=True)
class SipSettings:
    bind: str
    port: int
    transports: tuple[Transport, ...]


@dataclass(frozen=True)
class MediaSettings:
    rtp_port_min: int
    rtp_port_max: int
    codecs: tuple[str, ...]
    ptime_ms: int


@dataclass(frozen=True)
class MobilitySettings:
    """Inputs of :mod:`mobilityd.mobility` (``GracePeriods``, ``SourcePreferences``
    prefer/avoid, the coalescer's ``hold_down``)."""

    grace_period: float
    interface_preference: tuple[str, ...]
    interface_avoid: tuple[str, ...]
    hold_down: float


@dataclass(frozen=True)
class ControlSettings:
    socket: Path


@dataclass(frozen=True)
class LogSettings:
    level: LogLevel


@dataclass(frozen=True)
class Config:
    source: Path
    identity: Identity
    devices: tuple[Device, ...]
    registrar: Registrar | None
    peers: tuple[Peer, ...]
    security: Security
    sip: SipSettings
    media: MediaSettings
    mobility: MobilitySettings
    control: ControlSettings
    log: LogSettings

    def peer(self, name_or_uri: str) -> Peer | None:
        """The peer called ``name_or_uri`` or with that URI, if configured."""
        for peer in self.peers:
            if name_or_uri in (peer.name, peer.uri, peer.contact):
                return peer
        return None


RESTART_REQUIRED_SECTIONS = ("identity", "sip", "control")
"""Tables a SIGHUP reload cannot apply live (sockets and the account are bound to them)."""


def load_config(path: Path) -> Config:
    """Read and validate ``path``; raise :class:`ConfigError` naming what is wrong."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, None, "configuration file does not exist") from None
    except OSError as exc:
        raise ConfigError(path, None, f"cannot be read: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(path, None, f"is not UTF-8 text: {exc.reason}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, None, f"TOML syntax error: {exc}") from None
    return parse_config(data, path)


def parse_config(data: Mapping[str, Any], source: Path) -> Config:
    """Validate a parsed TOML document (``source`` names it and anchors relative paths)."""
    top = TableReader(source.absolute(), data)
    identity_table = top.table("identity", required=True)
    identity = _identity(identity_table)
    devices = _devices(top)
    registrar = _registrar(top, identity)
    security = _security(top)
    peers = _peers(top, security)
    config = Config(
        source=source.absolute(),
        identity=identity,
        devices=devices,
        registrar=registrar,
        peers=peers,
        security=security,
        sip=_sip(top),
        media=_media(top),
        mobility=_mobility(top),
        control=ControlSettings(socket=top.table("control").path("socket",
                                                                DEFAULT_CONTROL_SOCKET)),
        log=LogSettings(level=top.table("log").choice("level", LogLevel, LogLevel.INFO)),
    )
    top.finish()
    _cross_checks(config, identity_table)
    return config


def restart_required(old: Config, new: Config) -> tuple[str, ...]:
    """Dotted keys that changed between ``old`` and ``new`` but only apply on restart."""
    changed: list[str] = []
    for section in RESTART_REQUIRED_SECTIONS:
        before, after = getattr(old, section), getattr(new, section)
        for f in fields(before):
            if getattr(before, f.name) != getattr(after, f.name):
                changed.append(f"{section}.{f.name}")
    return tuple(changed)


def apply_live(running: Config, new: Config) -> tuple[Config, tuple[str, ...]]:
    """The configuration in effect after a reload, and the keys that wait for a restart.

    Sections in :data:`RESTART_REQUIRED_SECTIONS` keep their running values; all the rest
    (peers, devices, security, media, mobility, log level) comes from ``new``.
    """
    kept = {section: getattr(running, section) for section in RESTART_REQUIRED_SECTIONS}
    return replace(new, **kept), restart_required(running, new)


def check_sip_uri(reader: TableReader, name: str, *, need_user: bool = False) -> str:
    """A ``sip:``/``sips:`` URI (RFC 3261 §19.1.1), parsed by :mod:`mobilityd.sip.uri`."""
    value: str = reader.string(name)
    try:
        uri = SipUri.parse(value)
    except SipParseError as exc:
        raise reader.error(name, f"is not a valid SIP URI (RFC 3261 §19.1): {value!r}: "
                           f"{exc.reason}") from None
    if uri.scheme not in ("sip", "sips"):
        raise reader.error(name, f"is not a sip: or sips: URI (RFC 3261 §19.1): {value!r}")
    if need_user and not uri.user:
        raise reader.error(name, f"needs a user part (user@host), got {value!r}")
    return value


def _key_file(reader: TableReader, name: str, *, private: bool,
              psk: bool = False) -> Path | None:
    """Check the file named by ``name``; a ``psk`` file is also parsed (keyfiles docs)."""
    path: Path | None = reader.path(name, None)
    if path is None:
        return None
    try:
        if psk:
            read_psk(path)
        else:
            (check_private_file if private else check_public_file)(path)
    except KeyFileProblem as exc:
        raise KeyFileError(reader.file, reader.key(name), path, exc.problem) from None
    return path


def _identity(t: TableReader) -> Identity:
    return Identity(
        uri=check_sip_uri(t, "uri", need_user=True),
        display_name=t.string("display_name", ""),
        device=t.string("device", None),
        device_secret_file=_key_file(t, "device_secret_file", private=True, psk=True),
        certificate=_key_file(t, "certificate", private=False),
        private_key=_key_file(t, "private_key", private=True),
    )


_HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")
"""A DNS host name (RFC 1123 §2.1 labels), as the ``host`` of RFC 3261 §25.1 allows."""


def check_host_port(reader: TableReader, name: str) -> tuple[str, int] | None:
    """``"host:port"`` (host: IPv4 address, ``[IPv6]`` address or DNS name; RFC 3261
    §25.1 ``hostport``, but the port is required), or None when the key is absent."""
    value: str | None = reader.string(name, None)
    if value is None:
        return None
    host, colon, port_text = value.strip().rpartition(":")
    if not colon or not port_text.isdigit():
        raise reader.error(name, f'must be "host:port" with a port number, not {value!r}')
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise reader.error(name, f"port must be between 1 and 65535, not {port} in {value!r}")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise reader.error(name, f"{host} is not an IPv6 address (in {value!r})") from None
        return host[1:-1], port
    if ":" in host:
        raise reader.error(name, f"an IPv6 host must be in brackets ([addr]:port), "
                           f"not {value!r}")
    if not _HOSTNAME.fullmatch(host):
        raise reader.error(name, f"{host!r} is not an IPv4 address or host name "
                           f"(in {value!r})")
    if host.replace(".", "").isdigit():
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise reader.error(name, f"{host!r} is not an IPv4 address (in {value!r})"
                               ) from None
    return host, port


def _devices(top: TableReader) -> tuple[Device, ...]:
    devices: list[Device] = []
    for t in top.tables("devices"):
        name = t.string("name")
        if any(d.name == name for d in devices):
            raise t.error("name", f"device name {name!r} is used twice")
        contact = check_sip_uri(t, "contact")
        handoff = check_host_port(t, "handoff")
        clash = next((d.name for d in devices if d.handoff == handoff), None)
        if handoff is not None and clash is not None:
            raise t.error("handoff", f"{handoff[0]}:{handoff[1]} is device {clash!r}'s "
                          "hand-off address already")
        devices.append(Device(name=name, contact=contact, handoff=handoff))
        t.finish()
    return tuple(devices)


_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
"""RFC 3261 §25.1 ``token``: what a digest ``username`` may be without quoting."""


def _registrar(top: TableReader, identity: Identity) -> Registrar | None:
    t = top.table("registrar")
    if not top.has("registrar"):
        return None
    uri = check_sip_uri(t, "uri")
    expires = t.integer("expires", 600, lo=60, hi=86400)
    aor_user = SipUri.parse(identity.uri).user or ""
    username: str = t.string("username", aor_user)
    if not _TOKEN.fullmatch(username):  # RFC 7616 §3.4 username, RFC 3261 §25.1 token
        raise t.error("username", f"{username!r} is not a user name (letters, digits "
                      "and -.!%*_+`'~ only)")
    realm: str | None = t.string("realm", None)
    if realm is not None and (not realm or '"' in realm or "\\" in realm
                              or any(ord(c) < 0x20 for c in realm)):
        raise t.error("realm", f"{realm!r} is not a digest realm (RFC 7616 §3.3: "
                      "non-empty text without quotes, backslashes or control characters)")
    password_file: Path | None = t.path("password_file", None)
    password: Secret | None = None
    if password_file is not None:
        try:
            password = read_password(password_file)
        except KeyFileProblem as exc:
            raise KeyFileError(t.file, t.key("password_file"), password_file,
                               exc.problem) from None
    else:
        for name in ("username", "realm"):
            if t.has(name):
                raise t.error(name, "is set but password_file is not: credentials need "
                              "the password_file holding the password")
    if t.has("password"):
        raise t.error("password", "is not a key: put the password in a file with mode "
                      "0600 and name it in password_file")
    return Registrar(uri=uri, expires=expires, username=username, realm=realm,
                     password_file=password_file, password=password)


def _security(top: TableReader) -> Security:
    t = top.table("security")
    suites = t.strings("srtp_suites", (SrtpSuite.AES_CM_128_HMAC_SHA1_80.value,))
    parsed: list[SrtpSuite] = []
    for index, name in enumerate(suites):
        try:
            parsed.append(SrtpSuite(name))
        except ValueError:
            allowed = ", ".join(s.value for s in SrtpSuite)
            raise t.error(f"srtp_suites[{index}]",
                          f"unknown SRTP suite {name!r} (known: {allowed})") from None
    if not parsed:
        raise t.error("srtp_suites", "must list at least one suite")
    return Security(
        policy=t.choice("policy", SecurityPolicy, SecurityPolicy.REQUIRED),
        key_agreement=t.choice("key_agreement", KeyAgreement, KeyAgreement.PSK),
        srtp_suites=tuple(parsed),
        ca_certificate=_key_file(top.table("ca"), "certificate", private=False),
    )


def _peers(top: TableReader, security: Security) -> tuple[Peer, ...]:
    peers: list[Peer] = []
    for t in top.tables("peers"):
        name = t.string("name")
        if any(p.name == name for p in peers):
            raise t.error("name", f"peer name {name!r} is used twice")
        peer = Peer(
            name=name,
            uri=check_sip_uri(t, "uri", need_user=True),
            contact=check_sip_uri(t, "contact") if t.has("contact") else t.string("contact",
                                                                                  None),
            key_agreement=t.choice("key_agreement", KeyAgreement, security.key_agreement),
            psk_file=_key_file(t, "psk_file", private=True, psk=True),
            certificate=_key_file(t, "certificate", private=False),
        )
        t.finish()
        if security.policy is not SecurityPolicy.OFF:
            if peer.key_agreement is KeyAgreement.PSK and peer.psk_file is None:
                raise t.error("psk_file", "is required when key_agreement is 'psk'")
            if (peer.key_agreement is not KeyAgreement.PSK and peer.certificate is None
                    and security.ca_certificate is None):
                raise t.error("certificate", f"is required for key_agreement "
                              f"'{peer.key_agreement}' unless [ca] certificate is set")
        peers.append(peer)
    return tuple(peers)


def _sip(top: TableReader) -> SipSettings:
    t = top.table("sip")
    transports: list[Transport] = []
    for index, name in enumerate(t.strings("transports", ("udp",))):
        try:
            transports.append(Transport(name))
        except ValueError:
            raise t.error(f"transports[{index}]",
                          f"must be 'udp', 'tcp' or 'tls', not {name!r}") from None
    if not transports:
        raise t.error("transports", "must list at least one transport")
    return SipSettings(bind=t.address("bind", "0.0.0.0"),
                       port=t.integer("port", 5060, lo=1, hi=65535),
                       transports=tuple(transports))


MEDIA_CODECS = ("PCMU", "PCMA")
"""The codecs this build implements (G.711, RFC 3551 §4.5.14), the default preference."""


def _codecs(t: TableReader) -> tuple[str, ...]:
    """``codecs``: names of codecs we implement, preference order (RFC 3264 §6.1); an
    unknown name is an error here, never silently dropped by the call machinery."""
    names = tuple(name.upper() for name in t.strings("codecs", MEDIA_CODECS))
    if not names:
        raise t.error("codecs", f"must name at least one codec ({', '.join(MEDIA_CODECS)})")
    unknown = [name for name in names if name not in MEDIA_CODECS]
    if unknown:
        raise t.error("codecs", f"{', '.join(unknown)} not implemented (this build has G.711 "
                      f"{' and '.join(MEDIA_CODECS)}, RFC 3551 §4.5.14)")
    if len(set(names)) != len(names):
        raise t.error("codecs", f"lists a codec twice: {list(names)}")
    return names


def _media(top: TableReader) -> MediaSettings:
    t = top.table("media")
    low = t.integer("rtp_port_min", 16384, lo=1024, hi=65534)
    high = t.integer("rtp_port_max", 16483, lo=1025, hi=65535)
    if low % 2:
        raise t.error("rtp_port_min", f"must be even (RTP on even, RTCP on odd, RFC 3550 §11), "
                      f"not {low}")
    if high <= low:
        raise t.error("rtp_port_max", f"must be greater than rtp_port_min ({low}), not {high}")
    return MediaSettings(rtp_port_min=low, rtp_port_max=high,
                         codecs=_codecs(t),
                         ptime_ms=t.integer("ptime_ms", 20, lo=10, hi=120))


def _mobility(top: TableReader) -> MobilitySettings:
    t = top.table("mobility")
    return MobilitySettings(
        grace_period=t.number("grace_period", 30.0, lo=0.5, hi=3600.0),
        interface_preference=t.strings("interface_preference", ()),
        interface_avoid=t.strings("interface_avoid", ()),
        hold_down=t.number("hold_down", 1.0, lo=0.0, hi=60.0),
    )


def _cross_checks(config: Config, identity: TableReader) -> None:
    names = [d.name for d in config.devices]
    own = config.identity.device
    if own is not None and names and own not in names:
        raise identity.error("device", f"names no [[devices]] entry ({', '.join(names)})")
    if len(names) > 1 and config.identity.device_secret_file is None:
        raise identity.error("device_secret_file", "is required when [[devices]] lists more "
                             "than one device (it authenticates moves between them)")
    mode_needs_cert = any(p.key_agreement is not KeyAgreement.PSK for p in config.peers)
    if config.security.policy is not SecurityPolicy.OFF and mode_needs_cert:
        for key in ("certificate", "private_key"):
            if getattr(config.identity, key) is None:
                raise identity.error(key, "is required because a peer uses key_agreement "
                                     "'pke' or 'dh' (RFC 3830 §3.2, §3.3)")
