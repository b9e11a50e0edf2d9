"""Tone generator, Goertzel detector and WAV player/recorder."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from mobilityd.media import g711
from mobilityd.media.errors import MediaLocalError, WavFormatError
from mobilityd.media.g711 import G711PayloadType
from mobilityd.media.tone import ToneGenerator, dominant_frequency, pcm_samples, tone_share
from mobilityd.media.wav import WavPlayer, WavRecorder


def test_tone_is_phase_continuous_and_detected() -> None:
    generator = ToneGenerator(1000, 0.5)
    whole = ToneGenerator(1000, 0.5).frame(800)
    frames = b"".join(generator.read_frame() for _ in range(5))
    assert frames == whole
    assert max(pcm_samples(whole)) == round(0.5 * 32767)
    assert tone_share(whole, 1000) > 0.95
    assert tone_share(whole, 1400) < 0.01
    assert dominant_frequency(whole, [440, 1000, 1400, 2000]) == 1000


@pytest.mark.parametrize("law", list(G711PayloadType))
def test_tone_survives_g711(law: G711PayloadType) -> None:
    pcm = ToneGenerator(440, 0.3).frame(1600)
    decoded = g711.decode(g711.encode(pcm, law), law)
    assert dominant_frequency(decoded, [350, 440, 620, 1000]) == 440
    assert tone_share(decoded, 440) > 0.9


def test_silence_has_no_tone() -> None:
    assert tone_share(b"\x00\x00" * 160, 1000) == 0.0


def test_bad_tone_parameters() -> None:
    with pytest.raises(MediaLocalError):
        ToneGenerator(5000)
    with pytest.raises(MediaLocalError):
        ToneGenerator(1000, 1.5)


def test_wav_record_then_play(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    generator = ToneGenerator(800, 0.4)
    sent = [generator.read_frame() for _ in range(10)]
    with WavRecorder(path) as recorder:
        for frame in sent:
            recorder.write_frame(frame)
        assert recorder.samples_written == 1600
    with wave.open(str(path), "rb") as check:
        assert (check.getnchannels(), check.getsampwidth(), check.getframerate()) == (1, 2, 8000)
    with WavPlayer(path) as player:
        played = [player.read_frame() for _ in range(10)]
        finished_after_file = player.finished
        assert player.read_frame() == b"\x00" * 320
        assert (finished_after_file, player.finished) == (False, True)
    assert played == sent


def test_wav_player_loops(tmp_path: Path) -> None:
    path = tmp_path / "short.wav"
    with WavRecorder(path) as recorder:
        recorder.write_frame(bytes(range(200)))  # 100 samples, less than a frame
    with WavPlayer(path, loop=True) as player:
        frame = player.read_frame()
    assert frame == bytes(range(200)) + bytes(range(120))


def test_wav_wrong_format_and_garbage(tmp_path: Path) -> None:
    stereo = tmp_path / "stereo.wav"
    with wave.open(str(stereo), "wb") as writer:
        writer.setnchannels(2)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(b"\x00" * 400)
    with pytest.raises(WavFormatError, match="mono"):
        WavPlayer(stereo)
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF\x00\x00")
    with pytest.raises(WavFormatError):
        WavPlayer(garbage)
    with pytest.raises(WavFormatError):
        WavPlayer(tmp_path / "missing.wav")
