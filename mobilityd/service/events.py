"""Events the daemon publishes to ``subscribe`` clients (docs/control-protocol.md).

Frozen dataclasses with past-tense names. The call machinery (mobility, SIP, media)
publishes them through :class:`~mobilityd.service.bus.EventBus`; each one becomes a JSON
line ``{"v":1,"event":<wire name>,"seq":N,"data":{fields}}`` where the wire name is the
class name in kebab-case (``CallMoved`` -> ``call-moved``). Fields are plain JSON values:
no bytes, so no key material can be streamed.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ServiceEvent:
    """Base of all published events."""

    @classmethod
    def wire_name(cls) -> str:
        return re.sub(r"(?<!^)(?=[A-Z])", "-", cls.__name__).lower()

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


@dataclass(frozen=True)
class AddressChanged(ServiceEvent):
    """A usable local address (``address/prefix``) appeared (``old`` None) or went away
    (``new`` None), as the netlink watcher reports it."""

    interface: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class LinkChanged(ServiceEvent):
    """A link came up (with carrier) or went down."""

    interface: str
    state: str  # "up" | "down"


@dataclass(frozen=True)
class DefaultRouteChanged(ServiceEvent):
    """The default route of IP ``family`` (4 or 6) changed; ``None``s: no route left."""

    family: int
    gateway: str | None
    interface: str | None


@dataclass(frozen=True)
class CallStateChanged(ServiceEvent):
    call: str
    peer: str
    state: str


@dataclass(frozen=True)
class CallMoved(ServiceEvent):
    """A call's media moved to a new local address (roaming); ``gap_ms`` as measured."""

    call: str
    old_address: str
    new_address: str
    gap_ms: float


@dataclass(frozen=True)
class CallTransferred(ServiceEvent):
    """A call moved between devices of the user (move/pull); ``gap_ms`` as measured."""

    call: str
    from_device: str
    to_device: str
    gap_ms: float


@dataclass(frozen=True)
class SecurityFailed(ServiceEvent):
    """A key agreement or authentication failed (never carries key material)."""

    call: str | None
    peer: str
    reason: str


@dataclass(frozen=True)
class RegistrationUpdated(ServiceEvent):
    """The binding at ``[registrar]`` changed (RFC 3261 §10): its state
    (``registering``, ``registered``, ``failed``...), our Contact, the public GRUU the
    registrar returned (RFC 5627 §5.2), and with ``failed`` the ``reason`` (the final
    status, e.g. credentials refused at a second 401, RFC 3261 §22.2)."""

    registrar: str
    state: str
    expires: int | None
    contact: str | None = None
    gruu: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ConfigReloaded(ServiceEvent):
    """SIGHUP was handled: what was applied, what needs a restart, or why it failed."""

    ok: bool
    restart_required: tuple[str, ...]
    error: str | None


EVENT_TYPES: tuple[type[ServiceEvent], ...] = (
    AddressChanged, LinkChanged, DefaultRouteChanged, CallStateChanged, CallMoved,
    CallTransferred, SecurityFailed, RegistrationUpdated, ConfigReloaded,
)
EVENT_NAMES = frozenset(t.wire_name() for t in EVENT_TYPES)
