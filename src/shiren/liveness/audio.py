"""One uploaded recording with sound (issue 18's read-the-digits challenge): decoding, the speech
energy envelope and the speech segments whose starts are the spoken digits' onsets.

:func:`decode_av` turns the uploaded bytes — WebM/Opus from Chromium's ``MediaRecorder``,
MP4/AAC (or MOV) from a phone — into an :class:`AVCapture`: video frames sampled every
``sample_ms`` and scaled to at most 640 px (as a live capture), and the sound as mono float32 at
16 kHz, both on one timeline whose ``t = 0`` is the first video frame.  FFmpeg comes bundled with
PyAV (``av`` on PyPI); nothing is written to disk.  Bad input is a typed
:class:`~shiren.errors.InputError`, never a crash: an empty or foreign file
(``input.video_unreadable``), over 40 MiB (``input.recording_too_large``), over 30 s
(``input.recording_too_long``), no sound track (``input.audio_missing``), a muted microphone
(``input.audio_silent``), sound and picture of different lengths
(``input.audio_length_mismatch``) or starting at different times
(``input.av_timestamps_mismatch``), times that go backwards (``input.frames_bad_timestamps``).

The envelope is the RMS level in 10-ms hops (dB re full scale) with a zero-crossing rate per
hop; speech is where the level stands clearly above the recording's own noise floor and the hop
is voiced (a low zero-crossing rate: vowels and voiced consonants, not hiss or clicks).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from shiren.errors import ErrorCode, FramesError, InputError, ShirenError

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

AUDIO_RATE = 16_000
HOP_MS = 10.0


@dataclass(frozen=True, slots=True)
class AVLimits:
    """What an upload may be.  ``max_bytes``: a 20-s phone video at a high bit rate is 20–35 MB.
    ``silent_dbfs``: a hop this loud is the least the loudest hop of a spoken answer reaches (a
    muted or disconnected microphone records digital silence or < −60 dBFS of hiss)."""

    max_bytes: int = 40 * 1024 * 1024
    max_ms: float = 30_000.0
    max_side_px: int = 4096
    min_frames: int = 8
    sample_ms: float = 40.0
    target_side_px: int = 640
    silent_dbfs: float = -55.0
    max_length_gap_ms: float = 600.0
    """Sound and picture may differ in length by this much, or by 15 % of the video if more
    (MediaRecorder and phone muxers pad or trim the audio by up to a few hundred ms)."""
    max_start_gap_ms: float = 1000.0
    lead_in_ms: float = 0.0
    lead_in_sample_ms: float | None = None
    """RGB frames before ``lead_in_ms`` every ``lead_in_sample_ms`` instead of ``sample_ms``
    (``None``: no difference): the read-the-digits check's passive model judges the still
    lead-in's frames, which a sparse ``sample_ms`` would leave one of."""
    luma_ms: float | None = None
    """Also keep the brightness (the decoder's Y plane, no colour conversion) of a frame every
    ``luma_ms`` (``None``: none): the read-the-digits check measures the mouth's motion on it
    between the sparse RGB frames the face mesh sees."""
    luma_side_px: int = 360
    """The kept brightness planes are subsampled by a whole step to at most this side."""


@dataclass(frozen=True, slots=True, eq=False)
class AVCapture:
    """One decoded recording.  ``frames`` are RGB ``uint8``; ``times_ms`` their times; ``audio`` is
    mono float32 in [−1, 1] at ``rate`` Hz whose first sample is at ``audio_start_ms`` on the same
    timeline (``t = 0``: the first video frame).  ``luma`` (optional): grey ``uint8`` planes of
    more frames than ``frames`` (same picture, upright, maybe smaller), at ``luma_times_ms``."""

    frames: tuple[npt.NDArray[np.uint8], ...]
    times_ms: F64
    audio: F32
    rate: int = AUDIO_RATE
    audio_start_ms: float = 0.0
    luma: tuple[npt.NDArray[np.uint8], ...] = ()
    luma_times_ms: F64 = field(default_factory=lambda: np.zeros(0))

    @property
    def video_ms(self) -> float:
        if len(self.times_ms) < 2:
            return 0.0
        step = float(np.median(np.diff(self.times_ms)))
        return float(self.times_ms[-1] - self.times_ms[0]) + step

    @property
    def audio_ms(self) -> float:
        return 1000.0 * len(self.audio) / self.rate


def _bad(code: ErrorCode, message: str, **detail: object) -> InputError:
    if code in (ErrorCode.FRAMES_BAD_TIMESTAMPS, ErrorCode.FRAMES_TOO_FEW):
        return FramesError(message, code=code, detail=dict(detail))
    return InputError(message, code=code, detail=dict(detail))


def _scaled(frame: object, side: int) -> npt.NDArray[np.uint8]:
    width, height = int(frame.width), int(frame.height)  # type: ignore[attr-defined]
    scale = min(1.0, side / max(width, height))
    w, h = max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)
    image: npt.NDArray[np.uint8] = frame.to_ndarray(  # type: ignore[attr-defined]
        format="rgb24", width=w, height=h
    )
    turns = int(round(getattr(frame, "rotation", 0) or 0) // 90) % 4
    return np.ascontiguousarray(np.rot90(image, k=turns)) if turns else image


def _luma(frame: object, side: int) -> npt.NDArray[np.uint8]:
    """The Y plane as decoded (no conversion for YUV frames), subsampled to ≤ ``side``, upright."""
    width, height = int(frame.width), int(frame.height)  # type: ignore[attr-defined]
    step = max(1, -(-max(width, height) // side))
    fmt = str(frame.format.name)  # type: ignore[attr-defined]
    if fmt.startswith(("yuv", "yuvj", "nv12", "nv21")):
        plane = frame.planes[0]  # type: ignore[attr-defined]
        rows = np.frombuffer(plane, np.uint8).reshape(-1, int(plane.line_size))
        grey = rows[:height, :width]
    else:
        grey = frame.to_ndarray(format="gray")  # type: ignore[attr-defined]
    image = np.ascontiguousarray(grey[::step, ::step])
    turns = int(round(getattr(frame, "rotation", 0) or 0) // 90) % 4
    return np.ascontiguousarray(np.rot90(image, k=turns)) if turns else image


def grey_of(image: npt.NDArray[np.uint8], side: int = 360) -> npt.NDArray[np.uint8]:
    """An RGB frame's brightness (BT.601, as a decoder's Y plane), subsampled as :func:`_luma`."""
    step = max(1, -(-max(image.shape[:2]) // side))
    sub = image[::step, ::step].astype(np.uint16)
    grey = (77 * sub[..., 0] + 150 * sub[..., 1] + 29 * sub[..., 2]) >> 8
    return grey.astype(np.uint8)


class _Collector:
    """Accumulates sampled frames and resampled sound while the container is demuxed."""

    def __init__(self, limits: AVLimits) -> None:
        import av

        self.limits = limits
        self.frames: list[npt.NDArray[np.uint8]] = []
        self.times: list[float] = []
        self.luma: list[npt.NDArray[np.uint8]] = []
        self.luma_times: list[float] = []
        self.next_luma = -math.inf
        self.audio: list[F32] = []
        self.audio_samples = 0
        self.source: list[F32] = []
        """The sound as decoded (mono, ``source_rate``): resampled once at :meth:`flush`."""
        self.source_rate: int | None = None
        self.video_t0: float | None = None
        self.audio_t0: float | None = None
        self.last_t = -math.inf
        self.next_sample = -math.inf
        self.decoded = 0
        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)

    def video(self, frame: object) -> None:
        t = getattr(frame, "time", None)
        if t is None or not math.isfinite(t):
            raise _bad(ErrorCode.FRAMES_BAD_TIMESTAMPS, "A video frame has no time.")
        if max(int(frame.width), int(frame.height)) > self.limits.max_side_px:  # type: ignore[attr-defined]
            raise _bad(ErrorCode.VIDEO_UNREADABLE, "The video's frames are too large.")
        t_ms = 1000.0 * float(t)
        if self.video_t0 is None:
            self.video_t0 = t_ms
        rel = t_ms - self.video_t0
        if t_ms < self.last_t:
            raise _bad(ErrorCode.FRAMES_BAD_TIMESTAMPS, "The video's times go backwards.")
        if rel > self.limits.max_ms:
            raise _bad(ErrorCode.RECORDING_TOO_LONG, "The recording is too long.")
        self.last_t = t_ms
        self.decoded += 1
        if rel + 1e-6 >= self.next_sample:
            self.frames.append(_scaled(frame, self.limits.target_side_px))
            self.times.append(rel)
            self.next_sample = next_sample_ms(rel, self.limits)
        if self.limits.luma_ms is not None and rel + 1e-6 >= self.next_luma:
            self.luma.append(_luma(frame, self.limits.luma_side_px))
            self.luma_times.append(rel)
            # 0.75, not 0.9: a 30-fps phone's frames (33 ms apart) must all count, not every
            # other one (a 15-Hz mouth signal); 25 fps keeps every frame, 60 fps every other
            self.next_luma = rel + self.limits.luma_ms * 0.75

    def sound(self, frame: object) -> None:
        t = getattr(frame, "time", None)
        if self.audio_t0 is None and t is not None and math.isfinite(t):
            self.audio_t0 = 1000.0 * float(t)
        rate = int(getattr(frame, "sample_rate", 0) or 0)
        pcm = _mono(frame)
        if pcm is None or rate <= 0 or self.source_rate not in (None, rate):
            # an unusual sample format, or a rate that changes: the resampler, frame by frame
            self._flush_source()
            self._keep_all(self.resampler.resample(frame))  # type: ignore[arg-type]
        else:
            # the common case (Opus, AAC): kept as decoded, resampled once in flush(); one
            # resampler call per 20-ms frame cost ~100 µs each (~40 ms for 8 s of sound)
            self.source_rate = rate
            self.source.append(pcm)
            self.audio_samples += round(pcm.size * AUDIO_RATE / rate)
        # a running count: summing the pieces on every frame cost O(frames²) (~30 ms for 8 s)
        if self.audio_samples > AUDIO_RATE * (self.limits.max_ms / 1000.0 + 2):
            raise _bad(ErrorCode.RECORDING_TOO_LONG, "The recording is too long.")

    def _keep(self, samples: F32) -> None:
        self.audio.append(samples)
        self.audio_samples += samples.size

    def _keep_all(self, frames: list[Any]) -> None:
        """Keep a resampler's output frames (mono float32)."""
        for out in frames:
            self._keep(out.to_ndarray().reshape(-1).astype(np.float32, copy=False))

    def _flush_source(self) -> None:
        """Resample what was kept as decoded (one call), then start afresh."""
        if not self.source:
            return
        import av

        assert self.source_rate is not None
        src = np.concatenate(self.source)
        # the running count held an estimate for these samples: the real ones replace it
        self.audio_samples -= round(src.size * AUDIO_RATE / self.source_rate)
        self.source = []
        if self.source_rate == AUDIO_RATE:
            self._keep(src)
        else:
            once = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
            chunk = av.AudioFrame.from_ndarray(src[None, :], format="flt", layout="mono")
            chunk.sample_rate = self.source_rate
            self._keep_all([*once.resample(chunk), *once.resample(None)])
        self.source_rate = None

    def flush(self) -> None:
        self._flush_source()
        self._keep_all(self.resampler.resample(None))


_PCM: dict[str, tuple[type[np.generic], float]] = {
    "flt": (np.float32, 1.0),
    "fltp": (np.float32, 1.0),
    "dbl": (np.float64, 1.0),
    "dblp": (np.float64, 1.0),
    "s16": (np.int16, 1.0 / 32768.0),
    "s16p": (np.int16, 1.0 / 32768.0),
    "s32": (np.int32, 1.0 / 2147483648.0),
    "s32p": (np.int32, 1.0 / 2147483648.0),
}


def _mono(frame: object) -> F32 | None:
    """A decoded mono or stereo sound frame as mono float32, read from its planes without a
    conversion; stereo mixed as FFmpeg's resampler mixes it (each side × √½); ``None`` for more
    channels or a sample format not in ``_PCM`` (the resampler takes those)."""
    fmt = getattr(frame, "format", None)
    spec = _PCM.get(str(getattr(fmt, "name", "")))
    channels = len(getattr(getattr(frame, "layout", None), "channels", ()))
    if spec is None or channels not in (1, 2):
        return None
    dtype, scale = spec
    n = int(frame.samples)  # type: ignore[attr-defined]
    planes = frame.planes  # type: ignore[attr-defined]
    if fmt.is_planar:  # type: ignore[union-attr]
        parts = [np.frombuffer(pl, dtype)[:n] for pl in planes[:channels]]
    else:
        flat = np.frombuffer(planes[0], dtype)[: n * channels]
        parts = [flat[c::channels] for c in range(channels)]
    if len(parts) < channels or any(p.size < n for p in parts):
        return None
    out = parts[0].astype(np.float32)  # a copy: the frame's buffer is the decoder's
    if channels == 2:
        out += parts[1]
        scale *= math.sqrt(0.5)
    return out * np.float32(scale) if scale != 1.0 else out


def next_sample_ms(rel_ms: float, limits: AVLimits) -> float:
    """The earliest time of the RGB frame after one kept at ``rel_ms`` (the video's clock):
    a frame is kept at or after it (the 0.9 absorbs a camera's uneven timestamps)."""
    step = limits.sample_ms
    if limits.lead_in_sample_ms is not None and rel_ms < limits.lead_in_ms:
        step = limits.lead_in_sample_ms
    return rel_ms + step * 0.9


def _demux(data: bytes, limits: AVLimits) -> _Collector:
    import av

    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except Exception:
        raise _bad(ErrorCode.VIDEO_UNREADABLE, "The recording cannot be read.") from None
    with container:
        if not container.streams.video:
            raise _bad(ErrorCode.VIDEO_UNREADABLE, "The recording holds no video.")
        if not container.streams.audio:
            raise _bad(ErrorCode.AUDIO_MISSING, "The recording holds no sound track.")
        vs, aus = container.streams.video[0], container.streams.audio[0]
        got = _Collector(limits)
        try:
            for packet in container.demux(vs, aus):
                for frame in packet.decode():
                    (got.video if packet.stream is vs else got.sound)(frame)
            got.flush()
        except ShirenError:
            raise
        except Exception:
            raise _bad(ErrorCode.VIDEO_UNREADABLE, "The recording cannot be decoded.") from None
    return got


def decode_av(data: bytes, limits: AVLimits | None = None) -> AVCapture:
    """Frames and sound of one uploaded recording (see the module docstring for the errors)."""
    lim = limits or AVLimits()
    if not data:
        raise _bad(ErrorCode.VIDEO_UNREADABLE, "The recording is empty.")
    if len(data) > lim.max_bytes:
        raise _bad(
            ErrorCode.RECORDING_TOO_LARGE, "The recording is too large.", limit=lim.max_bytes
        )
    got = _demux(data, lim)
    if not got.frames or got.video_t0 is None:
        raise _bad(ErrorCode.VIDEO_UNREADABLE, "The recording holds no video frame.")
    if len(got.frames) < lim.min_frames:
        raise _bad(ErrorCode.FRAMES_TOO_FEW, "The recording is too short.", frames=len(got.frames))
    audio = np.concatenate(got.audio) if got.audio else np.zeros(0, np.float32)
    start = (got.audio_t0 if got.audio_t0 is not None else got.video_t0) - got.video_t0
    capture = AVCapture(
        frames=tuple(got.frames),
        times_ms=np.asarray(got.times, dtype=np.float64),
        audio=np.clip(audio, -1.0, 1.0),
        audio_start_ms=float(start),
        luma=tuple(got.luma),
        luma_times_ms=np.asarray(got.luma_times, dtype=np.float64),
    )
    check_sound(capture, lim)
    return capture


def check_sound(capture: AVCapture, lim: AVLimits) -> None:
    """The sound track against the picture: starts together, lasts as long, is not silent."""
    video_ms = max(capture.video_ms, float(capture.times_ms[-1]))
    if abs(capture.audio_start_ms) > lim.max_start_gap_ms:
        raise _bad(
            ErrorCode.AV_TIMESTAMPS_MISMATCH,
            "The sound does not start with the picture.",
            offset_ms=round(capture.audio_start_ms),
        )
    gap = abs(capture.audio_ms - video_ms)
    if gap > max(lim.max_length_gap_ms, 0.15 * video_ms):
        raise _bad(
            ErrorCode.AUDIO_LENGTH_MISMATCH,
            "The sound and the picture have different lengths.",
            audio_ms=round(capture.audio_ms),
            video_ms=round(video_ms),
        )
    db = envelope(capture.audio, capture.rate).db
    if db.size == 0 or float(db.max()) < lim.silent_dbfs:
        raise _bad(ErrorCode.AUDIO_SILENT, "The sound track is silent.")


# -- the envelope and speech segments --------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Envelope:
    """Per 10-ms hop: ``t_ms`` (hop centre on the audio's own clock, 0 = first sample), ``rms``
    (linear), ``db`` (dBFS) and ``zcr`` (zero crossings per sample, 0–1).  ``noise_db``
    (:func:`band_envelope` only, else ``nan``): the level, in the same band and units as ``db``,
    of the steady noise it subtracted."""

    t_ms: F64
    rms: F64
    db: F64
    zcr: F64
    noise_db: float = math.nan
    raw_db: F64 = field(default_factory=lambda: np.zeros(0))
    """(:func:`band_envelope` only) the band's level per hop before the noise was subtracted."""

    def snr_db(self, quiet_until_ms: float | None = None, speech_percentile: float = 95.0) -> float:
        """The speech's loud hops (``speech_percentile`` of ``db``) over the room's noise, in dB
        (``nan`` without a noise estimate): a quiet room ≳ 35 dB, an office ≈ 20-25.  The noise
        is the steady noise :func:`band_envelope` subtracted or, when louder, the band's median
        level before ``quiet_until_ms`` (this envelope's clock) — a stretch the protocol keeps
        silent (the lead-in before the first digit), which also hears a room whose noise is not
        steady (people talking: its quietest hops are not its level); the median, so that a
        cough or a word said early in it does not count as the room."""
        if self.db.size == 0 or not math.isfinite(self.noise_db):
            return math.nan
        noise = self.noise_db
        if quiet_until_ms is not None and self.raw_db.size == self.db.size:
            quiet = self.raw_db[self.t_ms < quiet_until_ms]
            if quiet.size:
                noise = max(noise, float(np.median(quiet)))
        return float(np.percentile(self.db, speech_percentile)) - noise

    def room_db(self, quiet_until_ms: float, min_ms: float = 200.0) -> float:
        """The room's own level on ``db``'s scale: the median of ``db`` before ``quiet_until_ms``
        (this envelope's clock; the stretch the protocol keeps silent), ``nan`` when that holds
        less than ``min_ms``.  In a quiet room it sits at the floor; with people talking behind
        the borrower it is their level, which the floor (the quietest hops) does not hear."""
        quiet = self.db[self.t_ms < quiet_until_ms]
        if quiet.size * HOP_MS < min_ms:
            return math.nan
        return float(np.median(quiet))


def envelope(audio: F32, rate: int = AUDIO_RATE, hop_ms: float = HOP_MS) -> Envelope:
    hop = max(1, round(rate * hop_ms / 1000.0))
    n = len(audio) // hop
    if n == 0:
        empty = np.zeros(0)
        return Envelope(empty, empty, empty, empty)
    frames = audio[: n * hop].astype(np.float64).reshape(n, hop)
    frames = frames - frames.mean(axis=1, keepdims=True)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    signs = np.signbit(frames)
    zcr = np.count_nonzero(signs[:, 1:] != signs[:, :-1], axis=1) / (hop - 1)
    t = (np.arange(n) + 0.5) * hop_ms
    db = (20.0 * np.log10(rms + 1e-9)).astype(np.float64)
    return Envelope(t.astype(np.float64), rms.astype(np.float64), db, zcr.astype(np.float64))


NOISE_QUIET_SHARE = 0.2
"""The share of hops, quietest in the band, whose mean spectrum :func:`band_envelope` takes for
the recording's steady noise."""


def band_envelope(
    audio: F32,
    rate: int = AUDIO_RATE,
    band_hz: tuple[float, float] = (300.0, 3000.0),
    hop_ms: float = HOP_MS,
) -> Envelope:
    """:func:`envelope` with ``db`` the level of the voiced band only (``band_hz``, a 32-ms Hann
    window per hop): vowels and voiced consonants carry their energy there; breath, hum and hiss
    mostly outside it.  The recording's steady noise — the mean spectrum of its quietest fifth of
    hops — is subtracted bin by bin first (at most down to a hundredth of it), so a noisy room
    does not bury the soft parts of the speech under its own level.  ``zcr`` is the spectral
    centroid's zero-crossing equivalent (``2 · centroid / rate``: a tone of f Hz crosses zero 2f
    times a second), not a count of crossings: white noise 20 dB under a voiced vowel nearly
    triples its crossings (each one chatters) but moves its centroid by ~15 %.
    ``rms`` stays the full band's."""
    env = envelope(audio, rate, hop_ms)
    n = env.t_ms.size
    if n == 0:
        return env
    hop = max(1, round(rate * hop_ms / 1000.0))
    win = 1 << math.ceil(math.log2(rate * 0.032))
    padded = np.concatenate([np.zeros(win // 2), audio.astype(np.float64), np.zeros(win)])
    # hop i's window starts at i * hop + hop // 2: strided views, not a gathered index array
    frames = np.lib.stride_tricks.sliding_window_view(padded, win)[hop // 2 :: hop][:n]
    hann = np.hanning(win)
    freqs = np.fft.rfftfreq(win, 1.0 / rate)
    keep = (freqs >= band_hz[0]) & (freqs <= band_hz[1])
    spec = np.fft.rfft(frames * hann, axis=1)
    power = spec.real**2 + spec.imag**2
    raw = power[:, keep].sum(axis=1)
    noise = power[raw <= np.percentile(raw, 100.0 * NOISE_QUIET_SHARE)].mean(axis=0)
    cleaned = np.maximum(power[:, keep] - noise[keep], 0.01 * noise[keep])
    norm = win * float(np.sum(hann**2))
    band = cleaned.sum(axis=1) / norm
    db = (10.0 * np.log10(band + 1e-18)).astype(np.float64)
    centroid = (power * freqs).sum(axis=1) / np.maximum(power.sum(axis=1), 1e-30)
    noise_db = 10.0 * math.log10(float(noise[keep].sum()) / norm + 1e-18)
    raw_db = (10.0 * np.log10(raw / norm + 1e-18)).astype(np.float64)
    zcr = (2.0 * centroid / rate).astype(np.float64)
    return Envelope(env.t_ms, env.rms, db, zcr, noise_db, raw_db)


@dataclass(frozen=True, slots=True)
class SpeechParams:
    """Speech activity, set from phonetics, not fitted: a vowel stands ≥ 12 dB above a quiet
    room's floor; voiced hops cross zero < 0.25 times a sample (≲ 2 kHz at 16 kHz; fricative
    hiss is higher); syllables of one word are < 120 ms apart, words read one at a time ≥ 200."""

    rise_db: float = 12.0
    range_db: float = 35.0
    max_zcr: float = 0.25
    merge_gap_ms: float = 120.0
    min_ms: float = 60.0
    min_voiced_ms: float = 40.0


@dataclass(frozen=True, slots=True)
class Segment:
    start_ms: float
    end_ms: float
    peak_db: float


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """``[start, end)`` index runs where ``mask`` holds."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def speech_floor(env: Envelope, room_db: float = math.nan) -> float:
    """The level speech is measured from: the recording's floor (the 10th percentile of ``db``)
    or, when louder, the room's own level (:meth:`Envelope.room_db`)."""
    floor = float(np.percentile(env.db, 10)) if env.db.size else 0.0
    return max(floor, room_db) if math.isfinite(room_db) else floor


def speech_segments(
    env: Envelope, params: SpeechParams | None = None, room_db: float = math.nan
) -> list[Segment]:
    """Stretches of speech on the envelope's clock; each one's start is an onset.  ``room_db``
    (optional): the room's level, under which nothing is speech (:func:`speech_floor`)."""
    p = params or SpeechParams()
    if env.db.size == 0:
        return []
    floor, loud = speech_floor(env, room_db), float(np.percentile(env.db, 99.5))
    active = env.db > max(floor + p.rise_db, loud - p.range_db)
    runs = _runs(active)
    merged: list[list[int]] = []
    gap = max(1, round(p.merge_gap_ms / HOP_MS))
    for a, b in runs:
        if merged and a - merged[-1][1] < gap:
            merged[-1][1] = int(b)
        else:
            merged.append([int(a), int(b)])
    voiced = active & (env.zcr < p.max_zcr)
    out = []
    for a, b in merged:
        if (b - a) * HOP_MS < p.min_ms or voiced[a:b].sum() * HOP_MS < p.min_voiced_ms:
            continue
        out.append(Segment(a * HOP_MS, b * HOP_MS, float(env.db[a:b].max())))
    return out


__all__ = [
    "AUDIO_RATE",
    "AVCapture",
    "AVLimits",
    "Envelope",
    "Segment",
    "SpeechParams",
    "band_envelope",
    "check_sound",
    "decode_av",
    "envelope",
    "grey_of",
    "speech_floor",
    "speech_segments",
]
