"""Record RTP and RTCP packets produced by GStreamer (another implementation).

Run by the system Python (``/usr/bin/python3`` with python3-gi). Prints JSON
``{"rtp": [hex...], "rtcp": [hex...]}``: a 440 Hz tone through GStreamer's own
``mulawenc`` and ``rtppcmupay`` (SSRC 0x11223344, first sequence 65530, first
timestamp 1000), and the RTCP compounds its ``rtpbin`` session sends for that stream,
up to and including the one carrying its BYE (RFC 3550 §6.6).

The capture ends at EOS, or as soon as all 40 RTP packets and the BYE compound are in:
rtpbin sometimes never forwards EOS on its RTCP pad (seen in about a third of runs on
a loaded machine); the pipeline then ran into the 10 s bus timeout while the session,
no longer a sender, went on emitting receiver reports (RFC 3550 §6.4.2) from a new
internal source, and those were captured too. Nothing after the BYE is part of the
stream being recorded.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import gi  # type: ignore[import-not-found]  # system python3-gi, no stubs

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # type: ignore[import-not-found]  # noqa: E402

PIPELINE = (
    "rtpbin name=rtpbin rtcp-sync-send-time=false "
    "audiotestsrc num-buffers=40 freq=440 samplesperbuffer=160 is-live=true ! "
    "audio/x-raw,rate=8000,channels=1 ! mulawenc ! "
    "rtppcmupay ssrc=287454020 seqnum-offset=65530 timestamp-offset=1000 ! "
    "rtpbin.send_rtp_sink_0 "
    "rtpbin.send_rtp_src_0 ! appsink name=rtp sync=false emit-signals=true "
    "rtpbin.send_rtcp_src_0 ! appsink name=rtcp sync=false async=false emit-signals=true"
)


RTP_PACKETS = 40
RTCP_BYE = 203
DEADLINE_S = 30.0


def has_bye(compound: bytes) -> bool:
    """Whether an RTCP compound holds a BYE (RFC 3550 §6.1 headers: type in octet 1,
    length in 32-bit words minus one in octets 2-3)."""
    offset = 0
    while offset + 4 <= len(compound):
        if compound[offset + 1] == RTCP_BYE:
            return True
        offset += 4 * (int.from_bytes(compound[offset + 2:offset + 4], "big") + 1)
    return False


def main() -> int:
    Gst.init(None)
    pipeline = Gst.parse_launch(PIPELINE)
    session = pipeline.get_by_name("rtpbin").emit("get-internal-session", 0)
    session.set_property("rtcp-min-interval", 100 * Gst.MSECOND)
    captured: dict[str, list[str]] = {"rtp": [], "rtcp": []}
    lock = threading.Lock()  # the appsinks call back from their streaming threads
    bye_seen = threading.Event()

    def pull(sink: Gst.Element, kind: str) -> Gst.FlowReturn:
        sample = sink.emit("pull-sample")
        buffer = sample.get_buffer()
        ok, info = buffer.map(Gst.MapFlags.READ)
        if ok:
            data = bytes(info.data)
            buffer.unmap(info)
            with lock:
                if kind == "rtp":
                    captured[kind].append(data.hex())
                elif not bye_seen.is_set():  # nothing after the stream's BYE
                    captured[kind].append(data.hex())
                    if has_bye(data):
                        bye_seen.set()
        return Gst.FlowReturn.OK

    for kind in ("rtp", "rtcp"):
        pipeline.get_by_name(kind).connect("new-sample", pull, kind)
    pipeline.set_state(Gst.State.PLAYING)
    bus = pipeline.get_bus()
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        message = bus.timed_pop_filtered(
            50 * Gst.MSECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR
        )
        if message is not None:
            break
        with lock:
            if bye_seen.is_set() and len(captured["rtp"]) >= RTP_PACKETS:
                break
    pipeline.set_state(Gst.State.NULL)
    with lock:
        json.dump(captured, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
