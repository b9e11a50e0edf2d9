"""What of ``[[devices]]`` a SIGHUP reload cannot apply to the running transfer agent.

The device list itself applies live: the next ``move`` / ``pull`` uses the new
targets (their GRUU or address, RFC 5627 §3, and hand-off address), moves already
running keep the entry they started with. Two pieces are bound to the hand-off channel,
the UDP socket the daemon opens at start (docs/transfer.md), and wait for a restart:

* ``devices``: the daemon started without another device of the user (or without
  ``identity.device``), so it opened no channel; a reload that adds devices cannot
  make moves work until a restart;
* ``devices.<this device>.handoff``: the port this device's channel listens on changed.

``[registrar]`` too is bound at start (the registration runs from the start-up
configuration, and the registrar is the account's outbound proxy):
:func:`registrar_restart_required` reports ``registrar`` when it was added or removed,
else ``registrar.uri`` / ``registrar.expires`` / ``registrar.username`` /
``registrar.realm`` / ``registrar.password_file`` (the last also when the file is the same
but the password in it changed: the configuration holds the password it read).

All are compared with the configuration the daemon *started* with, so they are reported
on every reload for as long as the file differs from what is running.

``[media]`` is not applied by the call machinery at all yet (:func:`media_not_applied`):
media ports are even ports the kernel picks (RFC 3550 §11), offers carry G.711 PCMU and
PCMA (RFC 3551 §4.5.14) at 20 ms. A file that asks for something else is logged at start
and at each reload (``config.not_applied``), never silently taken as done.
"""

from __future__ import annotations

from mobilityd.mobility.transfer_config import HANDOFF_PORT_OFFSET
from mobilityd.service.config import Config, MediaSettings

__all__ = [
    "device_restart_required",
    "handoff_listen_port",
    "has_handoff_channel",
    "media_not_applied",
    "registrar_restart_required",
    "started_restart_required",
]


def has_handoff_channel(config: Config) -> bool:
    """Whether a daemon started with ``config`` opens a hand-off channel: it names this
    device and lists another one (else it only takes transfers of its calls)."""
    own = config.identity.device
    return own is not None and any(d.name != own for d in config.devices)


def handoff_listen_port(config: Config) -> int:
    """The port of this device's hand-off channel: its own ``[[devices]] handoff`` port,
    else ``[sip] port`` + :data:`HANDOFF_PORT_OFFSET`."""
    own = next((d for d in config.devices if d.name == config.identity.device), None)
    if own is not None and own.handoff is not None:
        return own.handoff[1]
    return config.sip.port + HANDOFF_PORT_OFFSET


def device_restart_required(started: Config, new: Config) -> tuple[str, ...]:
    """Dotted keys of ``new``'s ``[[devices]]`` that the daemon started with ``started``
    cannot apply live (module docstring)."""
    if not has_handoff_channel(new):
        return ()  # nothing to move to: the running agent just refuses moves
    if not has_handoff_channel(started):
        return ("devices",)
    if handoff_listen_port(new) != handoff_listen_port(started):
        return (f"devices.{new.identity.device}.handoff",)
    return ()


def registrar_restart_required(started: Config, new: Config) -> tuple[str, ...]:
    """``[registrar]`` keys of ``new`` that differ from what the daemon registered with."""
    before, after = started.registrar, new.registrar
    if before == after:
        return ()
    if before is None or after is None:
        return ("registrar",)
    changed = [name for name in ("uri", "expires", "username", "realm")
               if getattr(before, name) != getattr(after, name)]
    if (before.password_file, before.password) != (after.password_file, after.password):
        changed.append("password_file")
    return tuple(f"registrar.{name}" for name in changed)


def started_restart_required(started: Config, new: Config) -> tuple[str, ...]:
    """Everything of ``new`` bound to what the daemon started with (module docstring)."""
    return (*device_restart_required(started, new), *registrar_restart_required(started, new))


MEDIA_AS_RUN = MediaSettings(rtp_port_min=16384, rtp_port_max=16483, codecs=("PCMU",),
                             ptime_ms=20)
"""The ``[media]`` defaults: a file with these asks for nothing the daemon does not do
(ports are still kernel-chosen; the docs say so)."""
MEDIA_REASONS = {
    "rtp_port_min": "media ports are even ports chosen by the kernel (RFC 3550 §11)",
    "rtp_port_max": "media ports are even ports chosen by the kernel (RFC 3550 §11)",
    "codecs": "offers carry G.711 PCMU and PCMA (RFC 3551 §4.5.14) in that order",
    "ptime_ms": "packets are 20 ms of audio",
}


def media_not_applied(config: Config) -> dict[str, str]:
    """``media.<key>`` -> why, for each ``[media]`` value that differs from the defaults
    (module docstring)."""
    return {f"media.{key}": reason for key, reason in MEDIA_REASONS.items()
            if getattr(config.media, key) != getattr(MEDIA_AS_RUN, key)}
