"""Transfer settings from the daemon's configuration: the one builder (issue 6/7).

:func:`transfer_settings_from` turns ``service.config`` (this device's name, the user's
AOR, the ``[[devices]]`` list with each device's contact and hand-off address, the
device secret file) into :class:`~mobilityd.mobility.transfer_agent.TransferSettings`.
Both call managers use it (``call.manager`` and ``service.calls_roaming``).

Where a device's hand-off channel (the HMAC-protected EXPECT/ACCEPT/PULL tokens,
docs/transfer.md) is reached: its ``[[devices]] handoff = "host:port"`` if set, else by
the daemon's convention the host of its ``contact`` (RFC 3261 §19.1.1) and that URI's
port (5060 if none, RFC 3261 §19.1.2) + :data:`HANDOFF_PORT_OFFSET`. This device's
channel listens on the port of its own ``handoff`` if set, else on ``[sip] port`` +
:data:`HANDOFF_PORT_OFFSET`. A GRUU contact (RFC 5627 §3) has the registrar's domain as
its host, so GRUU set-ups must set ``handoff``.
"""

from __future__ import annotations

from collections.abc import Mapping

from mobilityd.mobility.transfer.errors import TransferUsageError
from mobilityd.mobility.transfer_agent import DeviceEntry, TransferSettings
from mobilityd.service.config import Config, Device
from mobilityd.service.keyfiles import read_psk
from mobilityd.sip.errors import SipError
from mobilityd.sip.uri import SipUri

__all__ = ["DEFAULT_SIP_PORT", "HANDOFF_PORT_OFFSET", "handoff_address",
           "transfer_settings_from"]

HANDOFF_PORT_OFFSET = 10
"""A device's hand-off channel listens on its SIP port + this (the daemon's convention)."""
DEFAULT_SIP_PORT = 5060
"""The port of a ``sip:`` URI without one (RFC 3261 §19.1.2)."""


def handoff_address(device: Device) -> tuple[str, int]:
    """Where ``device``'s hand-off channel is reached (module docstring); raises
    :class:`TransferUsageError` if its contact is not a usable SIP URI."""
    if device.handoff is not None:
        return device.handoff
    try:
        uri = SipUri.parse(device.contact)
    except SipError as exc:
        raise TransferUsageError(f"device {device.name}: bad contact {device.contact!r}: "
                                 f"{exc.reason}") from exc
    return uri.host.strip("[]"), (uri.port or DEFAULT_SIP_PORT) + HANDOFF_PORT_OFFSET


def transfer_settings_from(
    config: Config, *, handoff_addresses: Mapping[str, tuple[str, int]] | None = None,
) -> TransferSettings | None:
    """Settings for this device, or None when it has no other device to move calls to
    (the caller then uses :func:`~mobilityd.mobility.transfer_agent.correspondent_only`).

    ``handoff_addresses`` overrides the configured hand-off address of the named devices.
    Raises :class:`TransferUsageError` (no device secret, bad contact) or
    :class:`~mobilityd.service.keyfiles.KeyFileProblem` (unusable device secret file).
    """
    identity = config.identity
    own = next((d for d in config.devices if d.name == identity.device), None)
    others = [d for d in config.devices if d.name != identity.device]
    if identity.device is None or not others:
        return None
    if identity.device_secret_file is None:
        raise TransferUsageError("moving calls between devices needs device_secret_file")
    overrides = handoff_addresses or {}
    devices = {d.name: DeviceEntry(d.contact, overrides.get(d.name) or handoff_address(d))
               for d in others}
    listen_port = (own.handoff[1] if own is not None and own.handoff is not None
                   else config.sip.port + HANDOFF_PORT_OFFSET)
    return TransferSettings(identity.device, read_psk(identity.device_secret_file).reveal(),
                            identity.uri, devices, handoff_port=listen_port)
