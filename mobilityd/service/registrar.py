"""The daemon's registration at its ``[registrar]`` (RFC 3261 §10, GRUU RFC 5627).

With a ``[registrar]`` the daemon registers its AOR (``identity.uri``) from its SIP
transport with ``+sip.instance`` and ``Supported: gruu`` (the SIP layer's
:class:`~mobilityd.sip.registration.RegistrationClient`, driven by the endpoint: refresh
before expiry, and a new Contact after each move, §10.2.2 / :meth:`SipEndpoint.rebind`).

The instance ID is stable and derived from the AOR and this device's name
(:func:`instance_id`, a name-based UUID, RFC 4122 §4.3): the registrar's public GRUU for
the device (``<aor>;gr=<instance>``, RFC 5627 §3.1) is therefore known before it
registers, so the user's other devices can list it as the device's ``contact``
(:func:`expected_gruu`); ``status.registration`` shows the one the registrar returned.

Digest credentials (RFC 3261 §22.1, RFC 7616 §3.4): with ``[registrar] password_file``
the client answers the registrar's 401/407 once with ``username`` (default: the AOR's
user part) and the password; a second challenge means they were refused (§22.2) and the
registration is ``failed``: :func:`failure_reason` says why in ``registration-updated``,
``status.registration`` and the ``registration.updated`` log line, and the SIP layer tries
again after :data:`~mobilityd.sip.registration.RETRY_AFTER_FAILURE` seconds (no tight
loop). Without a ``password_file`` a challenge is answered with an empty password (the
SIP layer's behaviour), so a registrar that challenges refuses the account.
:func:`credentials_view` is what status shows of them: never the password.

The registrar's host is resolved with the system resolver (``/etc/hosts``, DNS A/AAAA;
RFC 3263 SRV/NAPTR is not done) and the port defaults to 5060 (RFC 3261 §19.1.2).
:class:`Registration` publishes ``registration-updated`` when the state, the Contact or
the GRUU changes; it reads them from the client every :data:`WATCH_INTERVAL` because the
call agent's event pump consumes the SIP layer's registration events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid
from dataclasses import dataclass
from typing import Any

from mobilityd.service.bus import EventBus
from mobilityd.service.config import Config, Registrar
from mobilityd.service.events import RegistrationUpdated, ServiceEvent
from mobilityd.service.logging import log_event
from mobilityd.sip.endpoint import SipEndpoint
from mobilityd.sip.errors import SipError
from mobilityd.sip.registration import (
    RETRY_AFTER_FAILURE,
    RegistrationClient,
    RegistrationConfig,
    RegistrationState,
)
from mobilityd.sip.uri import SipUri

__all__ = [
    "WATCH_INTERVAL",
    "RegistrarError",
    "Registration",
    "RegistrationReporter",
    "credentials_view",
    "expected_gruu",
    "failure_reason",
    "instance_id",
]

_log = logging.getLogger("mobilityd.registrar")
WATCH_INTERVAL = 0.25
"""Seconds between two looks at the registration's state (module docstring)."""
DEFAULT_PORT = 5060


class RegistrarError(Exception):
    """The registrar cannot be used (its URI or host); the message says why."""


def instance_id(aor: str, device: str | None) -> str:
    """This device's ``+sip.instance`` (RFC 5627 §4.1): ``urn:uuid:`` and a UUID made
    from the AOR and the device name (RFC 4122 §4.3, SHA-1 name-based, URL namespace)."""
    name = f"{aor}#{device or ''}"
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}"


def expected_gruu(aor: str, device: str | None) -> str:
    """The public GRUU a registrar builds for this device: the AOR with a ``gr``
    parameter holding the instance ID (RFC 5627 §3.1, §5.2)."""
    return f"{aor};gr={instance_id(aor, device)}"


def credentials_view(registrar: Registrar) -> dict[str, Any]:
    """What ``status.registration`` shows of the credentials: the user name, the realm
    (None: any) and the password file's path, never the password."""
    return {"username": registrar.username if registrar.password is not None else None,
            "realm": registrar.realm,
            "password_file": (str(registrar.password_file)
                              if registrar.password_file is not None else None)}


def failure_reason(client: RegistrationClient, *, with_credentials: bool) -> str:
    """Why ``client`` is ``failed``: the final status the SIP layer recorded (RFC 3261
    §10.2 / §22.2, ``last_failure``), else what a failure with or without credentials
    means; with the time of the next attempt."""
    failure = client.last_failure
    if failure is not None:
        what = f"{failure.status} {failure.reason}"
        if not with_credentials and failure.status in (401, 407):
            what += " (no credentials are configured: [registrar] password_file)"
    elif with_credentials:
        what = ("the registrar refused the REGISTER or did not answer (credentials "
                "refused at a second challenge, RFC 3261 §22.2, or another final status)")
    else:
        what = ("the registrar refused the REGISTER or did not answer (no credentials "
                "are configured: [registrar] password_file)")
    return f"{what}; next attempt in {RETRY_AFTER_FAILURE:.0f} s"


@dataclass
class _Seen:
    state: str
    contact: str | None
    gruu: str | None
    reason: str | None = None


class Registration:
    """One AOR registered through an endpoint; publishes its changes (docstring)."""

    def __init__(self, endpoint: SipEndpoint, client: RegistrationClient, registrar: str,
                 bus: EventBus, *, with_credentials: bool = False) -> None:
        self.endpoint = endpoint
        self.client = client
        self.registrar = registrar
        self.with_credentials = with_credentials
        self._bus = bus
        self._seen: _Seen | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, endpoint: SipEndpoint, config: Config, bus: EventBus
                    ) -> Registration:
        """Register ``config.identity.uri`` at ``config.registrar``; raises
        :class:`RegistrarError`."""
        assert config.registrar is not None
        try:
            aor, registrar = SipUri.parse(config.identity.uri), SipUri.parse(
                config.registrar.uri)
        except SipError as exc:
            raise RegistrarError(f"bad SIP URI: {exc.reason}") from exc
        host = (registrar.maddr or registrar.host).strip("[]")
        port = registrar.port or DEFAULT_PORT
        try:
            found = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_DGRAM)
        except OSError as exc:
            raise RegistrarError(f"cannot resolve the registrar {host!r}: {exc}") from exc
        address = (str(found[0][4][0]), int(found[0][4][1]))
        password = config.registrar.password
        settings = RegistrationConfig(
            aor=aor, registrar=registrar,
            instance_id=instance_id(config.identity.uri, config.identity.device),
            username=config.registrar.username or aor.user or "",
            password=password.reveal().decode("utf-8") if password is not None else "",
            expires=config.registrar.expires, realm=config.registrar.realm)
        client = endpoint.register(settings, address)
        registration = cls(endpoint, client, config.registrar.uri, bus,
                           with_credentials=password is not None)
        log_event(_log, logging.INFO, "registration.started", registrar=config.registrar.uri,
                  address=f"{address[0]}:{address[1]}", instance=settings.instance_id,
                  username=settings.username if password is not None else None,
                  realm=config.registrar.realm)
        registration._task = asyncio.get_running_loop().create_task(registration._watch())
        return registration

    def snapshot(self) -> _Seen:
        contact = self.client.binding.contact
        gruu = self.client.pub_gruu
        state = self.client.state
        reason = (failure_reason(self.client, with_credentials=self.with_credentials)
                  if state is RegistrationState.FAILED else None)
        return _Seen(state.value, str(contact) if contact else None,
                     str(gruu) if gruu is not None else None, reason)

    async def _watch(self) -> None:
        while True:
            seen = self.snapshot()
            if seen != self._seen:
                self._seen = seen
                failed = seen.reason is not None
                log_event(_log, logging.ERROR if failed else logging.INFO,
                          "registration.updated", registrar=self.registrar,
                          state=seen.state, contact=seen.contact, gruu=seen.gruu,
                          reason=seen.reason)
                self._bus.publish(RegistrationUpdated(
                    registrar=self.registrar, state=seen.state,
                    expires=self.client.config.expires, contact=seen.contact,
                    gruu=seen.gruu, reason=seen.reason))
            await asyncio.sleep(WATCH_INTERVAL)

    async def close(self) -> None:
        """Stop watching and remove the binding (Expires: 0, RFC 3261 §10.2.2)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):  # the transport may be gone already
            self.endpoint.unregister(self.client)


class RegistrationReporter:
    """The latest ``registration-updated`` for ``status.registration`` (a bus
    subscriber: :meth:`EventBus.attach`)."""

    def __init__(self, registrar: Registrar | None = None) -> None:
        self.latest: RegistrationUpdated | None = None
        self.names: frozenset[str] | None = frozenset({RegistrationUpdated.wire_name()})
        self._credentials = credentials_view(registrar) if registrar is not None else {}

    def offer(self, seq: int, event: ServiceEvent) -> None:
        if isinstance(event, RegistrationUpdated):
            self.latest = event

    def to_json(self) -> dict[str, Any] | None:
        """The latest event's fields and the credentials (:func:`credentials_view`) the
        registration runs with; None before the first event."""
        if self.latest is None:
            return None
        return {**self.latest.to_json(), **self._credentials}
