"""The demo's PNG writer (ISO/IEC 15948 / RFC 2083), bitmap font and gap detection."""

from __future__ import annotations

import struct
import zlib

import pytest

from mobilityd.service.demo_png import (
    Canvas,
    Lane,
    Marker,
    encode_png,
    gap_runs,
    lane_gaps,
    timeline_png,
)


def read_png(data: bytes) -> tuple[int, int, bytes]:
    """A minimal independent PNG reader: chunks, CRCs, IHDR, IDAT, filter 0 rows."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks = 8, []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        kind = data[offset + 4:offset + 8]
        body = data[offset + 8:offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length:offset + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        chunks.append((kind, body))
        offset += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1] == (b"IEND", b"")
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, color, interlace) == (8, 2, 0)
    raw = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
    stride = width * 3 + 1
    assert len(raw) == stride * height
    assert all(raw[y * stride] == 0 for y in range(height))  # filter type 0 on every row
    pixels = b"".join(raw[y * stride + 1:(y + 1) * stride] for y in range(height))
    return width, height, pixels


def test_encoded_pixels_round_trip() -> None:
    pixels = bytes(range(256)) * 3 * 2  # 1536 octets = 32 x 16 RGB
    width, height, decoded = read_png(encode_png(32, 16, pixels))
    assert (width, height, decoded) == (32, 16, pixels)


def test_wrong_pixel_count_is_refused() -> None:
    with pytest.raises(ValueError):
        encode_png(2, 2, b"\x00" * 11)


def test_text_puts_ink_where_the_glyph_says() -> None:
    canvas = Canvas(12, 10)
    end = canvas.text(0, 0, "1", color=(0, 0, 0), scale=2)
    assert end == 8
    # "1" is ".#. ##. .#. .#. ###": top row only the middle column is inked
    def at(x: int, y: int) -> tuple[int, ...]:
        i = (y * 12 + x) * 3
        return tuple(canvas.pixels[i:i + 3])
    assert at(0, 0) == (255, 255, 255) and at(2, 0) == (0, 0, 0) and at(4, 0) == (255, 255, 255)
    assert at(0, 8) == at(4, 8) == (0, 0, 0)  # bottom row: "###"


def test_gap_runs_ignore_single_empty_bins() -> None:
    counts = [1, 0, 2, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0]
    assert gap_runs(counts) == [(4, 7), (10, 12)]
    assert gap_runs(counts, min_bins=1) == [(1, 1), (4, 7), (10, 12)]


def test_timeline_picture_is_a_valid_png_with_lanes_and_markers() -> None:
    lanes = [Lane("ALICE", 0.5, [1] * 100 + [0] * 10 + [1] * 100, [(0.5, 4.7)]),
             Lane("BOB LAPTOP", 0.5, [1] * 210, [(0.5, 4.7)])]
    png = timeline_png("TEST", lanes, [Marker(2.5, "ROAM")], duration=5.0)
    width, height, pixels = read_png(png)
    assert width > 1000 and height > 200
    colours = {pixels[i:i + 3] for i in range(0, len(pixels), 3)}
    assert bytes((40, 110, 200)) in colours  # bars
    assert bytes((255, 190, 190)) in colours  # the 10-bin gap is shaded
    assert bytes((200, 30, 30)) in colours  # the marker


def test_lane_gaps_stay_inside_the_times_the_call_was_there() -> None:
    # call here from 0.0 to 1.0 s and again from 2.0 s; between, the call was elsewhere
    counts = [1] * 40 + [0] * 10 + [0] * 50 + [1] * 50
    lane = Lane("X", 0.0, counts, [(0.0, 1.0), (2.0, 3.0)])
    ((start, seconds),) = lane_gaps(lane)  # 0.8-1.0 s only; 1.0-2.0 s is not a gap
    assert start == pytest.approx(0.8) and seconds == pytest.approx(0.2)
    assert lane_gaps(Lane("Y", 0.0, counts, [(0.0, 0.85)])) == []  # 50 ms: jitter
