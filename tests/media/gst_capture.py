"""Record RTP and RTCP packets produced by GStreamer (another implementation).

Run by the system Python (``/usr/bin/python3`` with python3-gi). Prints JSON
``{"rtp": [hex...], "rtcp": [hex...]}``: a 440 Hz tone through GStreamer's own
``mulawenc`` and ``rtppcmupay`` (SSRC 0x11223344, first sequence 65530, first
timestamp 1000), and the RTCP compounds its ``rtpbin`` session sends for that stream.
"""

from __future__ import annotations

import json
import sys

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


def main() -> int:
    Gst.init(None)
    pipeline = Gst.parse_launch(PIPELINE)
    session = pipeline.get_by_name("rtpbin").emit("get-internal-session", 0)
    session.set_property("rtcp-min-interval", 100 * Gst.MSECOND)
    captured: dict[str, list[str]] = {"rtp": [], "rtcp": []}

    def pull(sink: Gst.Element, kind: str) -> Gst.FlowReturn:
        sample = sink.emit("pull-sample")
        buffer = sample.get_buffer()
        ok, info = buffer.map(Gst.MapFlags.READ)
        if ok:
            captured[kind].append(bytes(info.data).hex())
            buffer.unmap(info)
        return Gst.FlowReturn.OK

    for kind in ("rtp", "rtcp"):
        pipeline.get_by_name(kind).connect("new-sample", pull, kind)
    pipeline.set_state(Gst.State.PLAYING)
    bus = pipeline.get_bus()
    bus.timed_pop_filtered(10 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    json.dump(captured, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
