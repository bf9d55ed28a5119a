"""The recording's sound read straight from the decoder's planes and resampled once
(:func:`shiren.liveness.audio.decode_av`) equals FFmpeg's resampler run frame by frame, for
the layouts and sample formats phones and browsers upload; other layouts take the resampler."""

from __future__ import annotations

import io
from fractions import Fraction

import numpy as np
import numpy.typing as npt
import pytest

from shiren.liveness.audio import AUDIO_RATE, AVLimits, decode_av


def _recording(codec: str, fmt: str, layout: str, rate: int, container: str) -> bytes:
    import av

    rng = np.random.default_rng(0)
    t = np.arange(int(2.0 * rate)) / rate
    voice = (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 2 * t) > 0)).astype(np.float32)
    channels = {"mono": 1, "stereo": 2, "5.1": 6}[layout]
    mix = np.stack([voice * (1 - 0.2 * c) for c in range(channels)]) + rng.normal(
        0, 0.01, (channels, voice.size)
    ).astype(np.float32)
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        vs = out.add_stream("libvpx" if container == "webm" else "mpeg4", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        aus = out.add_stream(codec, rate=rate)
        aus.layout = layout
        for i in range(50):
            image = np.full((48, 64, 3), 4 * i, dtype=np.uint8)
            vf = av.VideoFrame.from_ndarray(image, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, 25)
            for p in vs.encode(vf):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        step = 960
        for k in range(0, voice.size, step):
            part = mix[:, k : k + step]
            if fmt == "s16":
                data = (np.clip(part, -1, 1) * 32767).astype(np.int16).T.reshape(1, -1)
            else:
                data = np.ascontiguousarray(part.T.reshape(1, -1))
            af = av.AudioFrame.from_ndarray(data, format=fmt, layout=layout)
            af.sample_rate, af.pts, af.time_base = rate, k, Fraction(1, rate)
            for p in aus.encode(af):
                out.mux(p)
        for p in aus.encode():
            out.mux(p)
    return buf.getvalue()


def _by_resampler(data: bytes) -> npt.NDArray[np.float32]:
    """What decode_av produced before: FFmpeg's resampler on every decoded frame."""
    import av

    resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
    pieces = []
    with av.open(io.BytesIO(data)) as container:
        for packet in container.demux(container.streams.audio[0]):
            for frame in packet.decode():
                pieces += [o.to_ndarray().reshape(-1) for o in resampler.resample(frame)]
    pieces += [o.to_ndarray().reshape(-1) for o in resampler.resample(None)]
    return np.clip(np.concatenate(pieces), -1.0, 1.0).astype(np.float32)


@pytest.mark.parametrize(
    ("codec", "fmt", "layout", "rate", "container"),
    [
        ("libopus", "s16", "mono", 48000, "webm"),  # Chromium's MediaRecorder (fltp decoded)
        ("aac", "flt", "stereo", 44100, "mp4"),  # a phone (fltp, two channels)
        ("pcm_s16le", "s16", "stereo", 48000, "matroska"),  # packed integers
        ("pcm_s16le", "s16", "mono", 16000, "matroska"),  # already at 16 kHz
        ("pcm_u8", "s16", "5.1", 48000, "matroska"),  # neither: the resampler frame by frame
    ],
)
def test_sound_equals_the_resamplers(
    codec: str, fmt: str, layout: str, rate: int, container: str
) -> None:
    data = _recording(codec, fmt, layout, rate, container)
    got = decode_av(data, AVLimits(sample_ms=200.0, min_frames=2)).audio
    want = _by_resampler(data)
    assert got.dtype == np.float32
    assert got.size == want.size
    assert float(np.abs(got - want).max()) < 1e-5
    assert float(np.sqrt(np.mean(want**2))) > 0.05  # not two silences compared
