"""Audio sources and sinks of a call: tone generator or WAV player in, WAV recorder and
a tone monitor (Goertzel, :mod:`mobilityd.media.tone`) out."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mobilityd.media.pacing import AudioSource
from mobilityd.media.tone import SAMPLE_RATE, ToneGenerator, dominant_frequency, tone_share
from mobilityd.media.wav import WavPlayer, WavRecorder

__all__ = ["AudioOptions", "PcmTee", "ToneMonitor", "silence_source"]

FRAME_BYTES = 320  # 20 ms of 16-bit PCM at 8 kHz


@dataclass(frozen=True)
class AudioOptions:
    """What a call plays and records: a tone (Hz) or a WAV file (8 kHz mono 16-bit);
    ``record_to`` a WAV path for what we receive. Nothing given: silence, no file."""

    tone_hz: float | None = None
    play_wav: Path | None = None
    record_to: Path | None = None

    def source(self) -> AudioSource:
        if self.play_wav is not None:
            return WavPlayer(self.play_wav, loop=True)
        if self.tone_hz is not None:
            return ToneGenerator(self.tone_hz, 0.5)
        return silence_source()

    def recorder(self) -> WavRecorder | None:
        return WavRecorder(self.record_to) if self.record_to is not None else None


class _Silence:
    def read_frame(self) -> bytes:
        return bytes(FRAME_BYTES)


def silence_source() -> AudioSource:
    return _Silence()


class ToneMonitor:
    """Keeps the last ``seconds`` of received PCM to say which tone is there."""

    def __init__(self, seconds: float = 5.0) -> None:
        self._frames: deque[bytes] = deque(maxlen=max(1, int(seconds * SAMPLE_RATE / 160)))
        self.frames = 0

    def write_frame(self, pcm: bytes) -> None:
        self._frames.append(pcm)
        self.frames += 1

    def pcm(self) -> bytes:
        return b"".join(self._frames)

    def dominant(self, candidates: Iterable[float]) -> float | None:
        """The strongest of ``candidates`` in the kept audio (None: nothing received)."""
        pcm = self.pcm()
        return dominant_frequency(pcm, list(candidates)) if pcm else None

    def share(self, frequency: float) -> float:
        pcm = self.pcm()
        return tone_share(pcm, frequency) if pcm else 0.0


class PcmTee:
    """A PCM writer feeding several writers (recorder and monitor)."""

    def __init__(self, *writers: ToneMonitor | WavRecorder) -> None:
        self.writers = writers

    def write_frame(self, pcm: bytes) -> None:
        for writer in self.writers:
            writer.write_frame(pcm)
