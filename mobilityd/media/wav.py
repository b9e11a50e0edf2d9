"""WAV player and recorder (stdlib :mod:`wave`), 16-bit mono PCM, 20 ms frames.

The player yields frames of ``frame_samples`` samples (the last one zero-padded, then
silence, or loops); the recorder appends PCM frames. Only 16-bit mono at the sample
rate asked for is accepted (no resampling): anything else is a :class:`WavFormatError`.
"""

from __future__ import annotations

import wave
from pathlib import Path
from types import TracebackType

from mobilityd.media.errors import WavFormatError
from mobilityd.media.tone import FRAME_SAMPLES, SAMPLE_RATE


class WavPlayer:
    """Reads a 16-bit mono WAV file frame by frame (the audio-source protocol)."""

    def __init__(
        self, path: str | Path, *, sample_rate: int = SAMPLE_RATE,
        frame_samples: int = FRAME_SAMPLES, loop: bool = False,
    ) -> None:
        try:
            self._reader = wave.open(str(path), "rb")  # noqa: SIM115 (closed by close())
        except (OSError, EOFError, wave.Error) as exc:
            raise WavFormatError(f"cannot read WAV {path}: {exc}") from exc
        params = self._reader.getparams()
        if (params.nchannels, params.sampwidth, params.framerate) != (1, 2, sample_rate):
            self._reader.close()
            raise WavFormatError(
                f"{path}: {params.nchannels} ch, {8 * params.sampwidth} bit, "
                f"{params.framerate} Hz; need mono 16-bit {sample_rate} Hz"
            )
        self.frame_samples = frame_samples
        self.loop = loop
        self.finished = False

    def read_frame(self) -> bytes:
        """Next frame of PCM; silence once the file is over (unless looping)."""
        want = 2 * self.frame_samples
        try:
            data = self._reader.readframes(self.frame_samples)
            if len(data) < want and self.loop and self._reader.getnframes():
                self._reader.rewind()
                data += self._reader.readframes(self.frame_samples - len(data) // 2)
        except (OSError, EOFError, wave.Error) as exc:
            raise WavFormatError(f"WAV read failed: {exc}") from exc
        if len(data) < want:
            self.finished = True
            data += b"\x00" * (want - len(data))
        return data

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> WavPlayer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class WavRecorder:
    """Writes 16-bit mono PCM frames to a WAV file."""

    def __init__(self, path: str | Path, *, sample_rate: int = SAMPLE_RATE) -> None:
        try:
            self._writer = wave.open(str(path), "wb")  # noqa: SIM115 (closed by close())
        except OSError as exc:
            raise WavFormatError(f"cannot create WAV {path}: {exc}") from exc
        self._writer.setnchannels(1)
        self._writer.setsampwidth(2)
        self._writer.setframerate(sample_rate)
        self.samples_written = 0

    def write_frame(self, pcm: bytes) -> None:
        if len(pcm) % 2:
            raise WavFormatError("16-bit PCM frame must have an even length")
        self._writer.writeframes(pcm)
        self.samples_written += len(pcm) // 2

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> WavRecorder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
