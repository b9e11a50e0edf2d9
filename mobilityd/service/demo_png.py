"""The demo's media timeline picture: a tiny PNG writer and a 3x5 bitmap font.

No plotting library: PNG (ISO/IEC 15948, RFC 2083) is a signature, an IHDR chunk, zlib
(RFC 1950) compressed scanlines in IDAT (filter type 0 per row) and IEND, each chunk
with its CRC-32. :class:`Canvas` is an RGB raster with rectangles and text;
:func:`timeline_png` draws one lane per device (packets received per 20 ms bin as bars),
the moves as labelled vertical lines and the gaps (bins without a packet while the call
was up on that device) shaded.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["GAP_BINS", "Canvas", "Lane", "Marker", "encode_png", "gap_runs", "lane_gaps",
           "timeline_png"]

Color = tuple[int, int, int]
WHITE, BLACK = (255, 255, 255), (0, 0, 0)
BAR, GAP, MARK = (40, 110, 200), (255, 190, 190), (200, 30, 30)
GAP_BINS = 3
"""Empty 20 ms bins in a row that count as a media gap (60 ms: three lost frames)."""

# 3x5 glyphs, five rows top to bottom, "#" = ink. Lower case is drawn as upper case.
_FONT_ROWS = {
    "A": ".#. #.# ### #.# #.#", "B": "##. #.# ##. #.# ##.", "C": ".## #.. #.. #.. .##",
    "D": "##. #.# #.# #.# ##.", "E": "### #.. ##. #.. ###", "F": "### #.. ##. #.. #..",
    "G": ".## #.. #.# #.# .##", "H": "#.# #.# ### #.# #.#", "I": "### .#. .#. .#. ###",
    "J": "..# ..# ..# #.# .#.", "K": "#.# #.# ##. #.# #.#", "L": "#.. #.. #.. #.. ###",
    "M": "#.# ### ### #.# #.#", "N": "##. #.# #.# #.# #.#", "O": ".#. #.# #.# #.# .#.",
    "P": "##. #.# ##. #.. #..", "Q": ".#. #.# #.# ##. .##", "R": "##. #.# ##. #.# #.#",
    "S": ".## #.. .#. ..# ##.", "T": "### .#. .#. .#. .#.", "U": "#.# #.# #.# #.# ###",
    "V": "#.# #.# #.# #.# .#.", "W": "#.# #.# ### ### #.#", "X": "#.# #.# .#. #.# #.#",
    "Y": "#.# #.# .#. .#. .#.", "Z": "### ..# .#. #.. ###", "0": "### #.# #.# #.# ###",
    "1": ".#. ##. .#. .#. ###", "2": "##. ..# .#. #.. ###", "3": "##. ..# .#. ..# ##.",
    "4": "#.# #.# ### ..# ..#", "5": "### #.. ##. ..# ##.", "6": ".## #.. ### #.# ###",
    "7": "### ..# .#. .#. .#.", "8": "### #.# ### #.# ###", "9": "### #.# ### ..# ##.",
    " ": "... ... ... ... ...", "-": "... ... ### ... ...", ".": "... ... ... ... .#.",
    ":": "... .#. ... .#. ...", "/": "..# ..# .#. #.. #..", "(": ".#. #.. #.. #.. .#.",
    ")": ".#. ..# ..# ..# .#.", ">": "#.. .#. ..# .#. #..", "_": "... ... ... ... ###",
    "=": "... ### ... ### ...", "+": "... .#. ### .#. ...", ",": "... ... ... .#. #..",
    "%": "#.# ..# .#. #.. #.#",
}
_FONT = {ch: rows.replace(" ", "") for ch, rows in _FONT_ROWS.items()}


def encode_png(width: int, height: int, rgb: bytes) -> bytes:
    """An 8-bit RGB PNG of ``rgb`` (row-major, 3 octets per pixel)."""
    if len(rgb) != width * height * 3:
        raise ValueError("pixel data does not match width x height x 3")

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    stride = width * 3
    raw = b"".join(b"\x00" + rgb[y * stride:(y + 1) * stride] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


class Canvas:
    """An RGB raster with filled rectangles and 3x5 text scaled by ``scale``."""

    def __init__(self, width: int, height: int, background: Color = WHITE) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(background) * (width * height))

    def rect(self, x: int, y: int, w: int, h: int, color: Color) -> None:
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(self.width, x + w), min(self.height, y + h)
        if x1 <= x0 or y1 <= y0:
            return
        row = bytes(color) * (x1 - x0)
        for yy in range(y0, y1):
            start = (yy * self.width + x0) * 3
            self.pixels[start:start + len(row)] = row

    def text(self, x: int, y: int, text: str, color: Color = BLACK, scale: int = 2) -> int:
        """Draw ``text`` with its top-left corner at (x, y); returns the end x."""
        for ch in text.upper():
            glyph = _FONT.get(ch, _FONT["_"])
            for i, ink in enumerate(glyph):
                if ink == "#":
                    self.rect(x + (i % 3) * scale, y + (i // 3) * scale, scale, scale, color)
            x += 4 * scale
        return x

    def png(self) -> bytes:
        return encode_png(self.width, self.height, bytes(self.pixels))


@dataclass(frozen=True)
class Lane:
    """One device: packets received per bin, the first bin's time (s from t0)."""

    name: str
    start: float
    counts: Sequence[int]
    active: Sequence[tuple[float, float]]  # (from, to) seconds while the call was here


@dataclass(frozen=True)
class Marker:
    at: float  # seconds from t0
    label: str


def gap_runs(counts: Sequence[int], min_bins: int | None = None) -> list[tuple[int, int]]:
    """(first, last) bin of every run of at least ``min_bins`` empty bins (default
    :data:`GAP_BINS`): shorter runs are scheduling jitter of a 20 ms sender, not gaps."""
    need = GAP_BINS if min_bins is None else min_bins
    runs, start = [], None
    for n, count in enumerate([*counts, 1]):
        if count == 0 and start is None:
            start = n
        elif count != 0 and start is not None:
            if n - start >= need:
                runs.append((start, n - 1))
            start = None
    return runs


def lane_gaps(lane: Lane, bin_s: float = 0.02) -> list[tuple[float, float]]:
    """(start, seconds) of each gap of ``lane`` within the times the call was there:
    runs of empty bins clipped to ``lane.active``, kept if still :data:`GAP_BINS` long."""
    gaps = []
    for first, last in gap_runs(lane.counts, 1):
        run_start, run_end = lane.start + first * bin_s, lane.start + (last + 1) * bin_s
        for active_from, active_to in lane.active:
            start, end = max(run_start, active_from), min(run_end, active_to)
            if end - start >= GAP_BINS * bin_s - 1e-9:
                gaps.append((start, end - start))
    return gaps


def timeline_png(title: str, lanes: Sequence[Lane], markers: Sequence[Marker],
                 duration: float, bin_s: float = 0.02) -> bytes:
    """The media timeline picture (module docstring)."""
    left, top, lane_h, gap_h, plot_w = 130, 70, 90, 24, 1000
    px_per_s = max(10, int(plot_w / max(duration, 1.0)))
    width = left + int(duration * px_per_s) + 220
    height = top + len(lanes) * (lane_h + gap_h) + 70
    canvas = Canvas(width, height)
    canvas.text(10, 10, title, scale=3)
    canvas.text(10, 32, "BARS: SRTP PACKETS RECEIVED PER 20 MS   SHADE: GAP (NO PACKET "
                f"FOR {GAP_BINS * 20} MS OR MORE)   RED LINE: STEP", (90, 90, 90))
    max_count = max([2, *(max(lane.counts, default=0) for lane in lanes)])
    for index, lane in enumerate(lanes):
        y0 = top + index * (lane_h + gap_h)
        canvas.rect(left, y0 + lane_h, width - left - 20, 1, BLACK)
        canvas.text(10, y0 + lane_h // 2 - 5, lane.name)
        bin_w = max(1, round(bin_s * px_per_s))
        for start, seconds in lane_gaps(lane, bin_s):
            canvas.rect(left + int(start * px_per_s), y0, max(1, round(seconds * px_per_s)),
                        lane_h, GAP)
        for n, count in enumerate(lane.counts):
            t = lane.start + n * bin_s
            x = left + int(t * px_per_s)
            if count:
                h = int(lane_h * min(count, max_count) / max_count)
                canvas.rect(x, y0 + lane_h - h, bin_w, h, BAR)
    axis_y = top + len(lanes) * (lane_h + gap_h)
    canvas.rect(left, axis_y, width - left - 20, 1, BLACK)
    for second in range(0, int(duration) + 1):
        x = left + second * px_per_s
        canvas.rect(x, axis_y, 1, 6, BLACK)
        if second % max(1, 40 // px_per_s + 1) == 0:
            canvas.text(x - 4, axis_y + 10, str(second))
    canvas.text(left, axis_y + 30, "TIME (S)")
    for n, marker in enumerate(markers):
        x = left + int(marker.at * px_per_s)
        canvas.rect(x, top - 6, 2, axis_y - top + 6, MARK)
        canvas.text(x + 4, top - 14 + (n % 3) * 12, marker.label, MARK)
    return canvas.png()
