"""The daemon's :class:`~mobilityd.service.calls.CallManager` on top of a
:class:`~mobilityd.call.agent.CallAgent`.

:func:`agent_config_from` maps the daemon :class:`~mobilityd.service.config.Config` to
the agent's: identity, SIP bind address/port/first transport, security policy, first
SRTP suite, per-peer key agreement with PSK file / peer certificate, our key and
certificate with the CA (PKE, DH-SIGN), each peer's ``contact`` (direct addressing), and
``[media]``: the RTP/RTCP port range (RFC 3550 §11), the codec preference order (RFC 3264
§6.1) and ``a=ptime`` (RFC 8866 §6.4) -- :func:`media_options_from`. A reload
(:meth:`AgentCallManager.reconfigure`) applies all of them to the next call.
Call objects and events follow docs/control-protocol.md; ``move`` / ``pull`` answer
``not-available`` until the mobility helpers wire them.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from mobilityd.call.agent import AgentConfig, CallAgent
from mobilityd.call.errors import CallUsageError
from mobilityd.call.events import (
    CallConnected,
    CallEvent,
    CallPlaced,
    CallRefused,
    CallTerminated,
    IncomingCallOffered,
)
from mobilityd.call.identity import sip_identity
from mobilityd.call.keying import KeyingConfig, KeyMethod, PeerKeying
from mobilityd.call.keyload import CredentialError, load_certificate, load_pk_credentials, load_psk
from mobilityd.call.media_options import MediaConfigError, MediaOptions
from mobilityd.call.negotiation import CallSecurity
from mobilityd.call.secure_call import CallState, SecureCall
from mobilityd.media.srtp import SrtpSuite
from mobilityd.mobility.transfer import TransferFailed, TransferUsageError
from mobilityd.mobility.transfer_agent import TransferAgent, correspondent_only
from mobilityd.mobility.transfer_config import transfer_settings_from
from mobilityd.service.bus import EventBus
from mobilityd.service.config import Config
from mobilityd.service.errors import ControlError, ErrorCode
from mobilityd.service.events import CallStateChanged, SecurityFailed
from mobilityd.service.keyfiles import KeyFileProblem
from mobilityd.sip.errors import SipError
from mobilityd.sip.transport import TransportKind
from mobilityd.sip.uri import SipUri

__all__ = ["AgentCallManager", "agent_config_from", "call_object", "media_options_from"]

_log = logging.getLogger(__name__)
_STATE_NAMES = {CallState.CALLING: "calling", CallState.RINGING: "ringing",
                CallState.CONNECTED: "established", CallState.ENDED: "ended",
                CallState.FAILED: "ended"}


def _keying(config: Config) -> tuple[KeyingConfig, dict[bytes, tuple[str, int]]]:
    identity, security = config.identity, config.security
    own = None
    if identity.private_key and identity.certificate and security.ca_certificate:
        own = load_pk_credentials(identity.private_key, identity.certificate,
                                  security.ca_certificate)
    peers: dict[bytes, PeerKeying] = {}
    contacts: dict[bytes, tuple[str, int]] = {}
    for peer in config.peers:
        peer_id = sip_identity(peer.uri)
        peers[peer_id] = PeerKeying(
            KeyMethod(peer.key_agreement.value),
            load_psk(peer.psk_file) if peer.psk_file else None,
            load_certificate(peer.certificate) if peer.certificate else None,
        )
        if peer.contact:
            try:
                uri = SipUri.parse(peer.contact)
            except SipError as exc:
                raise CredentialError(f"peer {peer.name}: bad contact {peer.contact!r}") from exc
            contacts[peer_id] = (uri.host.strip("[]"), uri.port or 5060)
    keying = KeyingConfig(peers=peers, own=own,
                          default_method=KeyMethod(security.key_agreement.value),
                          suite=SrtpSuite[security.srtp_suites[0].name])
    return keying, contacts


def _agent_for(config: Config, agent_config: AgentConfig) -> CallAgent:
    """A :class:`TransferAgent` (issue 6): it moves calls when the user has other devices
    and always takes transfers of its calls; unusable transfer settings only disable
    moving."""
    try:
        settings = transfer_settings_from(config)
    except (TransferUsageError, KeyFileProblem) as exc:
        _log.error("call transfers disabled: %s", exc)
        settings = None
    if settings is None:  # still the correspondent of transfers (REFER policy)
        settings = correspondent_only(config.identity.uri, os.urandom(32))
    return TransferAgent(agent_config, settings)


def media_options_from(config: Config) -> MediaOptions:
    """``[media]`` for the agent; :class:`MediaConfigError` names a value it cannot use
    (the configuration loader should have refused it already)."""
    media = config.media
    return MediaOptions.from_settings(media.rtp_port_min, media.rtp_port_max,
                                      tuple(media.codecs), media.ptime_ms)


def agent_config_from(config: Config) -> AgentConfig:
    """The agent settings of a daemon configuration (module docstring); raises
    :class:`CredentialError` for unusable key files, :class:`MediaConfigError` for
    unusable ``[media]`` values."""
    keying, contacts = _keying(config)
    username, password = _proxy_credentials(config)
    return AgentConfig(
        identity=config.identity.uri,
        host=config.sip.bind,
        port=config.sip.port,
        transport=TransportKind[config.sip.transports[0].name],
        security=CallSecurity(config.security.policy.value),
        keying=keying,
        contacts=contacts,
        # the registrar is the account's proxy: requests to peers without a contact go
        # through it, and a re-INVITE to a peer that moved too is re-routed through it
        outbound_proxy=config.registrar.uri if config.registrar is not None else None,
        media=media_options_from(config),
        # ... and its credentials answer that proxy's 407 to a call (RFC 3261 §22.3)
        auth_username=username,
        auth_password=password,
    )


def _proxy_credentials(config: Config) -> tuple[str | None, str | None]:
    """(username, password) from ``[registrar]`` (``username``, ``password_file``), or
    (None, None) when it has no credentials."""
    registrar = config.registrar
    if registrar is None or registrar.password is None:
        return None, None
    return registrar.username, registrar.password.reveal().decode("utf-8")


def _address(address: tuple[str, int] | None) -> str | None:
    return f"{address[0]}:{address[1]}" if address is not None else None


def call_object(call: SecureCall) -> dict[str, Any]:
    """A call as docs/control-protocol.md describes it (never key material)."""
    media = call.media
    streams: list[dict[str, Any]] = []
    if media is not None and call.negotiated is not None:
        tx_packets = rx_packets = lost = auth = replays = 0
        if media.tx is not None:
            tx_packets = media.tx.counters(call.negotiated.local_ssrc).packets
        else:
            tx_packets = media.counters.rtp_sent
        if media.rx is not None and call.negotiated.remote_ssrc is not None:
            snap = media.rx.counters(call.negotiated.remote_ssrc)
            rx_packets, lost, auth, replays = (snap.packets, snap.lost, snap.auth_failures,
                                               snap.replays)
        else:
            rx_packets = media.counters.rtp_received
        streams.append({"ssrc": call.negotiated.local_ssrc, "packets_sent": tx_packets,
                        "packets_received": rx_packets, "lost": lost,
                        "auth_failures": auth + media.counters.auth_failures,
                        "replays": replays})
    suite = call.negotiated.suite if call.negotiated is not None else None
    return {
        "id": call.call_id,
        "peer": call.peer,
        "state": _STATE_NAMES[call.state],
        "key_agreement": call.method or "none",
        "srtp_suite": suite.name if suite is not None else None,
        "local": _address(media.local_rtp) if media is not None else None,
        "remote": _address(media.remote_rtp) if media is not None else None,
        "streams": streams,
        "moves": [],
    }


class AgentCallManager:
    """A :class:`~mobilityd.service.calls.CallManager` running real calls."""

    def __init__(self, config: Config, bus: EventBus) -> None:
        self._config = config
        self._bus = bus
        self.agent: CallAgent | None = None
        self._problem: str | None = None

    @property
    def available(self) -> bool:
        return self.agent is not None

    async def start(self) -> None:
        try:
            agent_config = agent_config_from(self._config)
        except CredentialError as exc:
            self._problem = f"call credentials unusable: {exc}"
            _log.error("%s", self._problem)
            return
        except MediaConfigError as exc:
            self._problem = f"media settings unusable: {exc}"
            _log.error("%s", self._problem)
            return
        agent = _agent_for(self._config, agent_config)
        agent.add_listener(self._publish)
        await agent.start()
        self.agent = agent

    def reconfigure(self, config: Config) -> None:
        self._config = config
        if self.agent is None:
            return
        try:
            keying, contacts = _keying(config)
        except CredentialError as exc:
            _log.error("reload keeps the previous call credentials: %s", exc)
            return
        try:
            media: MediaOptions | None = media_options_from(config)
        except MediaConfigError as exc:
            _log.error("reload keeps the previous media settings: %s", exc)
            media = None
        self.agent.reconfigure(CallSecurity(config.security.policy.value), keying, contacts,
                               media)

    def _agent(self) -> CallAgent:
        if self.agent is None:
            raise ControlError(ErrorCode.NOT_AVAILABLE,
                               self._problem or "call handling has not started")
        return self.agent

    def _call(self, call_id: str) -> SecureCall:
        call = self._agent().calls.get(call_id)
        if call is None:
            raise ControlError(ErrorCode.NO_SUCH_CALL, f"no call {call_id!r}", "call")
        return call

    async def list_calls(self) -> list[dict[str, Any]]:
        return [call_object(c) for c in self._agent().calls.values()
                if c.state not in (CallState.ENDED, CallState.FAILED)]

    async def place(self, uri: str, peer: str | None) -> dict[str, Any]:
        agent = self._agent()
        if peer is not None:
            configured = self._config.peer(peer)
            if configured is None:
                raise ControlError(ErrorCode.BAD_REQUEST, f"no peer {peer!r} configured", "peer")
            uri = configured.uri
        try:
            call_id = await agent.place(uri)
        except CallUsageError as exc:
            raise ControlError(ErrorCode.REFUSED, str(exc), "uri") from exc
        except OSError as exc:
            raise ControlError(ErrorCode.REFUSED, f"cannot open media ports: {exc}") from exc
        return call_object(agent.call(call_id))

    async def _decide(self, call_id: str, action: str, reason: str | None = None
                      ) -> dict[str, Any]:
        call = self._call(call_id)
        agent = self._agent()
        try:
            if action == "answer":
                await agent.answer(call_id)
            elif action == "reject":
                await agent.reject(call_id, reason=reason)
            else:
                await agent.hangup(call_id)
        except CallUsageError as exc:
            raise ControlError(ErrorCode.REFUSED, str(exc), "call") from exc
        return call_object(call)

    async def answer(self, call: str) -> dict[str, Any]:
        return await self._decide(call, "answer")

    async def reject(self, call: str, reason: str | None) -> dict[str, Any]:
        return await self._decide(call, "reject", reason)

    async def hangup(self, call: str) -> dict[str, Any]:
        return await self._decide(call, "hangup")

    def _transfer_agent(self) -> TransferAgent:
        agent = self._agent()
        if not isinstance(agent, TransferAgent) or not agent.transfer.devices:
            raise ControlError(ErrorCode.NOT_AVAILABLE, "moving calls needs [[devices]] "
                               "naming this device and another, and a device_secret_file")
        return agent

    async def move(self, call: str, device: str) -> dict[str, Any]:
        """Move ``call`` to ``device`` (docs/transfer.md; REFER, RFC 3515)."""
        self._call(call)
        agent = self._transfer_agent()
        if device not in agent.transfer.devices:
            raise ControlError(ErrorCode.NO_SUCH_DEVICE, f"no other device {device!r} in "
                               f"the configuration ({', '.join(agent.transfer.devices)})",
                               "device")
        result = await agent.move(call, device)
        if isinstance(result, TransferFailed):
            raise ControlError(ErrorCode.REFUSED, f"transfer failed: {result.reason}")
        return {"call": call, "from_device": agent.transfer.device, "to_device": device,
                "state": "transferred"}

    async def pull(self, call: str) -> dict[str, Any]:
        """Ask the user's other devices to move ``call`` here (PULL token)."""
        agent = self._transfer_agent()
        pulled = await asyncio.gather(*(agent.pull(device, call)
                                        for device in agent.transfer.devices))
        got = next((c for c in pulled if c is not None), None)
        if got is None:
            raise ControlError(ErrorCode.REFUSED, f"no device moved call {call!r} here")
        return {"call": got.call_id, "from_device": None, "to_device": agent.transfer.device,
                "state": "transferred"}

    async def close(self) -> None:
        if self.agent is not None:
            await self.agent.close()
            self.agent = None

    def _publish(self, event: CallEvent) -> None:
        agent = self.agent
        call = agent.calls.get(event.call_id) if agent is not None else None
        peer = call.peer if call is not None else ""
        state = {CallPlaced: "calling", IncomingCallOffered: "ringing",
                 CallConnected: "established", CallTerminated: "ended",
                 CallRefused: "ended"}.get(type(event))
        if isinstance(event, CallPlaced):
            peer = event.peer
        elif isinstance(event, IncomingCallOffered):
            peer = event.caller
        if isinstance(event, CallRefused) and event.mikey_error is not None:
            self._bus.publish(SecurityFailed(event.call_id, peer, event.reason))
        if state is not None:
            self._bus.publish(CallStateChanged(event.call_id, peer, state))
