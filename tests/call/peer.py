"""One call agent as a process on a test host (run it with ``ip netns exec``).

    python -m tests.call.peer --config peer.json

The JSON config names the role (``caller`` places one call, ``callee`` answers),
identity, SIP address, policy, key method, credential files (PEM, PSK hex), the tone
to send and the WAV file to record, optionally ``media`` (the ``[media]`` keys). The
process prints one JSON line ``{"ready": ...}`` once its SIP transport is bound, then
one report line (events, counters, tones, negotiated media) at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from mobilityd.call.agent import AgentConfig, CallAgent
from mobilityd.call.audio import AudioOptions
from mobilityd.call.events import CallConnected, CallEvent, CallRefused, CallTerminated
from mobilityd.call.identity import sip_identity
from mobilityd.call.keying import KeyingConfig, KeyMethod, PeerKeying
from mobilityd.call.keyload import load_certificate, load_pk_credentials
from mobilityd.call.media_options import MediaOptions
from mobilityd.call.negotiation import CallSecurity
from mobilityd.call.sdpmedia import KeyMgmtLevel
from mobilityd.media.errors import RtpParseError
from mobilityd.media.rtp import RtpPacket
from mobilityd.mikey.constants import ErrorType
from mobilityd.mikey.session import SessionPolicy

TONES = (440.0, 697.0, 1000.0, 1336.0)


def keying(conf: dict[str, Any]) -> KeyingConfig:
    peer = sip_identity(conf["peer"])
    own = None
    if conf.get("key"):
        own = load_pk_credentials(Path(conf["key"]), Path(conf["cert"]), Path(conf["ca"]))
    method = KeyMethod(conf.get("method", "psk"))
    psk = bytes.fromhex(conf["psk"]) if conf.get("psk") else None
    cert = load_certificate(Path(conf["peer_cert"])) if conf.get("peer_cert") else None
    return KeyingConfig(peers={peer: PeerKeying(method, psk, cert)}, own=own,
                        default_method=method,
                        policy=SessionPolicy(clock_skew=600.0))


def event_json(event: CallEvent) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(event).__name__}
    for name in event.__slots__:
        value = getattr(event, name)
        if isinstance(value, ErrorType):
            value = value.name
        elif isinstance(value, int) and not isinstance(value, bool):
            value = int(value)
        out[name] = value
    return out


async def run(conf: dict[str, Any]) -> dict[str, Any]:
    contacts = {}
    if conf.get("peer_contact"):
        host, port = conf["peer_contact"]
        contacts[sip_identity(conf["peer"])] = (host, int(port))
    record = Path(conf["record"]) if conf.get("record") else None
    config = AgentConfig(
        conf["identity"], conf["host"], int(conf.get("port", 5060)),
        security=CallSecurity(conf.get("security", "required")), keying=keying(conf),
        contacts=contacts, key_mgmt_level=KeyMgmtLevel(conf.get("level", "session")),
        auto_answer=conf["role"] == "callee",
        audio=AudioOptions(tone_hz=conf.get("tone"), record_to=record),
    )
    if conf.get("media"):  # [media] keys: rtp_port_min, rtp_port_max, codecs, ptime_ms
        config.media = MediaOptions.from_settings(**conf["media"])
    agent = CallAgent(config)
    events: list[CallEvent] = []
    agent.add_listener(events.append)
    await agent.start()
    print(json.dumps({"ready": list(agent.sip.local_address)}), flush=True)
    report: dict[str, Any] = {}
    duration = float(conf.get("duration", 2.0))
    deadline = float(conf.get("timeout", 20.0))

    async def until(kinds: tuple[type[CallEvent], ...]) -> CallEvent | None:
        try:
            async with asyncio.timeout(deadline):
                while True:
                    event = await agent.events.get()
                    if isinstance(event, kinds):
                        return event
        except TimeoutError:
            return None

    call_id = None
    if conf["role"] == "caller":
        call_id = await agent.place(conf["peer"])
    first = await until((CallConnected, CallRefused))
    payload_sizes: set[int] = set()
    if isinstance(first, CallConnected):
        call_id = first.call_id
        _count_payload_sizes(agent, call_id, payload_sizes)
        if conf["role"] == "caller":
            await asyncio.sleep(duration)
            report["counters"] = agent.call(call_id).counters()
            report["tones"] = tone_report(agent, call_id)
            report["summary"] = agent.call(call_id).summary()
            await agent.hangup(call_id)
            await asyncio.sleep(0.3)  # let the BYE's 200 arrive
        else:
            await until((CallTerminated, CallRefused))
            report["counters"] = agent.call(call_id).counters()
            report["tones"] = tone_report(agent, call_id)
            report["summary"] = agent.call(call_id).summary()
    elif conf["role"] == "callee" and first is not None:
        await asyncio.sleep(0.5)  # let a retransmitted INVITE be absorbed
    if call_id is not None and call_id in agent.calls:
        call = agent.call(call_id)
        negotiated = call.negotiated
        report["media"] = {
            "payload_type": negotiated.payload_type if negotiated else None,
            "send_ptime_ms": negotiated.ptime_ms if negotiated else None,
            "received_payload_sizes": sorted(payload_sizes),
            "local_sdp": call.local_sdp.decode(), "remote_sdp": call.remote_sdp.decode(),
        }
    report["events"] = [event_json(e) for e in events]
    report["status"] = agent.status()
    await agent.close()
    return report


def _count_payload_sizes(agent: CallAgent, call_id: str, sizes: set[int]) -> None:
    """Note the payload size of every RTP packet received (the peer's packet time)."""
    media = agent.call(call_id).media
    if media is None:
        return
    inner = media.on_rtp

    def spy(plain: bytes, source: Any) -> None:
        with contextlib.suppress(RtpParseError):
            sizes.add(len(RtpPacket.parse(plain).payload))
        if inner is not None:
            inner(plain, source)

    media.on_rtp = spy


def tone_report(agent: CallAgent, call_id: str) -> dict[str, Any]:
    monitor = agent.call(call_id).monitor
    dominant = monitor.dominant(TONES)
    return {"dominant": dominant, "share": monitor.share(dominant) if dominant else 0.0,
            "frames": monitor.frames}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True, type=Path)
    args = parser.parse_args()
    conf = json.loads(args.config.read_text())
    report = asyncio.run(run(conf))
    print(json.dumps({"report": report}), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
