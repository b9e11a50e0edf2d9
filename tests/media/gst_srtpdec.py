"""Decrypt SRTP packets with GStreamer's srtpdec (gstreamer1.0-plugins-bad).

Run by the system Python (``/usr/bin/python3`` with python3-gi), never the project's
virtualenv. Input on stdin, JSON: ``{"key": hex(master key + salt), "ssrc": int,
"roc": int, "auth": "hmac-sha1-80"|"hmac-sha1-32", "packets": [hex, ...]}``.
Output on stdout, JSON: ``{"decrypted": [hex, ...]}`` in arrival order (packets
srtpdec rejects are simply missing).
"""

from __future__ import annotations

import json
import sys

import gi  # type: ignore[import-not-found]  # system python3-gi, no stubs

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
from gi.repository import Gst, GstApp  # type: ignore[import-not-found]  # noqa: E402


def main() -> int:
    request = json.load(sys.stdin)
    Gst.init(None)
    if Gst.ElementFactory.find("srtpdec") is None:
        print("srtpdec element not found: install gstreamer1.0-plugins-bad", file=sys.stderr)
        return 3
    pipeline = Gst.parse_launch(
        "appsrc name=src format=time is-live=false ! srtpdec name=dec ! "
        "appsink name=sink sync=false emit-signals=false"
    )
    # The key, suites and ROC are handed over the way srtpdec documents it: caps returned
    # from its "request-key" signal for the SSRC it sees.
    caps = Gst.Caps.from_string(
        "application/x-srtp, media=(string)audio, clock-rate=(int)8000, "
        "encoding-name=(string)PCMU, payload=(int)0, "
        f"ssrc=(uint){request['ssrc']}, roc=(uint){request['roc']}, "
        f"srtp-key=(buffer){request['key']}, "
        "srtp-cipher=(string)aes-128-icm, "
        f"srtp-auth=(string){request['auth']}, "
        "srtcp-cipher=(string)aes-128-icm, srtcp-auth=(string)hmac-sha1-80"
    )
    decoder = pipeline.get_by_name("dec")
    decoder.connect("request-key", lambda element, ssrc: caps)
    src = pipeline.get_by_name("src")
    src.set_property("caps", Gst.Caps.from_string("application/x-srtp"))
    sink: GstApp.AppSink = pipeline.get_by_name("sink")
    pipeline.set_state(Gst.State.PLAYING)
    for packet in request["packets"]:
        src.emit("push-buffer", Gst.Buffer.new_wrapped(bytes.fromhex(packet)))
    src.emit("end-of-stream")
    decrypted = []
    while True:
        sample = sink.try_pull_sample(5 * Gst.SECOND)
        if sample is None:
            break
        buffer = sample.get_buffer()
        ok, info = buffer.map(Gst.MapFlags.READ)
        if ok:
            decrypted.append(bytes(info.data).hex())
            buffer.unmap(info)
    bus = pipeline.get_bus()
    error = bus.pop_filtered(Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    if error is not None:
        print(f"GStreamer error: {error.parse_error()}", file=sys.stderr)
    json.dump({"decrypted": decrypted}, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
