"""Sessions for ``shiren eval readdigits``, built at run time from the GRID talking-face clips.

A GRID clip (3 s, 25 fps) is one person reading a six-word English sentence in one breath.  A
read-the-digits answer is one word per digit with pauses between, so a **genuine session** is
re-timed from the clip, sound and picture always cut together at the same 40-ms frame bounds:

1. *Pieces*: the clip's speech (:func:`~shiren.liveness.audio.speech_segments`) is cut at the
   dips of its level — a local minimum of the 50-ms smoothed level at least ``DIP_DB`` below the
   highest point on either side — into word-sized pieces (merged until each is ≥ 160 ms); the cuts
   fall on frame bounds.
2. *Rest*: the clip's longest run of frames whose level stays within 4 dB of its floor (no
   speech, no breath), played forward and backward, fills every pause: the person's own still
   face and the room's own noise.  (Not simply the silent start: GRID speakers open the mouth and
   breathe in up to 400 ms before speaking.)
3. *Placement*: the challenge's digit ``i`` is answered by piece ``(k + i) mod n`` (``k`` random)
   starting ``U(350, 750)`` ms after the digit appears (rounded to a frame), cut short 160 ms
   before the next answer starts.

The words are not the digits (no recogniser reads them) and one voiced stretch of "bin blue" may
count as two onsets: the onset rule's English tolerance (≤ 2 per window) applies.

Attacks, for the same challenge: ``dubbed`` (this session's picture, the sound of another
person's genuine session of the same challenge: right words at the right moments, wrong mouth),
``shifted`` (the genuine sound moved ±200–600 ms against the picture), ``frozen`` (the session's
first frame held under the genuine sound), ``looped`` (the clip's original 3-s video looped under
the genuine sound: a mouth that moves, at the wrong times), ``synth`` (espeak-ng reading the
digits at the right moments over the person's still face), ``silent`` (the genuine picture with a
muted microphone's all-zero track).
"""

from __future__ import annotations

import itertools
import random
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from shiren.liveness.audio import (
    AUDIO_RATE,
    AVCapture,
    AVLimits,
    decode_av,
    envelope,
    grey_of,
    next_sample_ms,
    speech_segments,
)
from shiren.liveness.readdigits import PROMPTS, ReadDigitsChallenge

FRAME_MS = 40.0
CHUNK = int(AUDIO_RATE * FRAME_MS / 1000)  # audio samples per source frame
DIP_DB = 4.0
MIN_PIECE_MS = 160.0
LATENCY_MS = (350.0, 750.0)
GAP_BEFORE_NEXT_MS = 160.0
SHIFT_MS = (200.0, 600.0)
ATTACKS = ("dubbed", "shifted", "frozen", "looped", "synth", "silent")

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True, eq=False)
class Clip:
    name: str
    person: str
    frames: tuple[Image, ...]
    audio: npt.NDArray[np.float32]
    """Aligned with the frames: ``CHUNK`` samples per frame (padded or cut)."""
    pieces: tuple[tuple[int, int], ...]
    """Word-sized pieces as ``[first, end)`` frame indices."""
    rest: tuple[int, ...]
    """Frame indices of the quietest run, forward then backward."""


def load_clip(path: Path) -> Clip:
    capture = decode_av(path.read_bytes(), AVLimits(sample_ms=FRAME_MS, max_length_gap_ms=1e9))
    n = len(capture.frames)
    audio = np.zeros(n * CHUNK, np.float32)
    start = round(capture.audio_start_ms / 1000 * AUDIO_RATE)
    src = capture.audio[max(0, -start) :]
    audio[max(0, start) : max(0, start) + len(src)] = src[: n * CHUNK - max(0, start)]
    pieces, _ = _pieces(audio)
    a, b = _quietest_run(audio, n)
    rest = tuple(range(a, b)) + tuple(range(b - 2, a, -1))
    return Clip(path.stem, path.stem.split("_", 1)[0], capture.frames, audio, pieces, rest)


def _quietest_run(audio: npt.NDArray[np.float32], n: int) -> tuple[int, int]:
    """The longest run of frames within 4 dB of the clip's floor (no speech, no breath)."""
    db = envelope(audio).db[: n * 4].reshape(n, 4).mean(axis=1)
    quiet = db < float(np.percentile(db, 10)) + 4.0
    edges = np.diff(np.concatenate(([0], quiet.astype(np.int8), [0])))
    runs = list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))
    a, b = max(runs, key=lambda r: r[1] - r[0])
    return int(a), int(max(b, a + 3))


def _pieces(audio: npt.NDArray[np.float32]) -> tuple[tuple[tuple[int, int], ...], float]:
    env = envelope(audio)
    segs = speech_segments(env)
    if not segs:
        raise ValueError("no speech in the clip")
    smooth = np.convolve(env.db, np.ones(5) / 5, mode="same")
    cuts: list[float] = []
    for seg in segs:
        a, b = int(seg.start_ms // 10), int(seg.end_ms // 10)
        bounds = [seg.start_ms]
        for i in range(a + 1, b - 1):
            if smooth[i] <= smooth[i - 1] and smooth[i] < smooth[i + 1]:
                left, right = smooth[a : i + 1].max(), smooth[i : b + 1].max()
                if min(left, right) - smooth[i] >= DIP_DB:
                    bounds.append(i * 10.0)
        bounds.append(seg.end_ms)
        cuts.extend(bounds)
    frames = sorted({round(c / FRAME_MS) for c in cuts})
    pieces: list[tuple[int, int]] = []
    for a, b in itertools.pairwise(frames):
        if pieces and (pieces[-1][1] - pieces[-1][0]) * FRAME_MS < MIN_PIECE_MS:
            pieces[-1] = (pieces[-1][0], b)
        else:
            pieces.append((a, b))
    keep = tuple(p for p in pieces if (p[1] - p[0]) * FRAME_MS >= MIN_PIECE_MS)
    return keep or tuple(pieces), segs[-1].end_ms


def _timeline(clip: Clip, challenge: ReadDigitsChallenge, rng: random.Random) -> list[int]:
    """Source frame index for every 40-ms output frame of the session."""
    total = int(challenge.duration_ms // FRAME_MS)
    k = rng.randrange(len(clip.pieces))
    starts = [round((s.show_ms + rng.uniform(*LATENCY_MS)) / FRAME_MS) for s in challenge.steps]
    out = [clip.rest[i % len(clip.rest)] for i in range(total)]
    for i, start in enumerate(starts):
        a, b = clip.pieces[(k + i) % len(clip.pieces)]
        limit = (
            starts[i + 1] - round(GAP_BEFORE_NEXT_MS / FRAME_MS) if i + 1 < len(starts) else total
        )
        for j, src in enumerate(range(a, b)):
            if start + j >= min(limit, total):
                break
            out[start + j] = src
    return out


def _capture(
    frames: Sequence[Image], audio: npt.NDArray[np.float32], limits: AVLimits
) -> AVCapture:
    """RGB frames as :func:`~shiren.liveness.audio.decode_av` samples them under ``limits``
    (:func:`~shiren.liveness.audio.next_sample_ms`), and every frame's brightness (40 ms), as
    its ``luma_ms`` keeps them."""
    every = np.arange(len(frames), dtype=np.float64) * FRAME_MS
    keep: list[int] = []
    due = -np.inf
    for i, t in enumerate(every):
        if t + 1e-6 >= due:
            keep.append(i)
            due = next_sample_ms(float(t), limits)
    return AVCapture(
        frames=tuple(frames[i] for i in keep),
        times_ms=every[keep],
        audio=audio.astype(np.float32),
        luma=tuple(grey_of(f) for f in frames),
        luma_times_ms=every,
    )


def _audio_of(clip: Clip, order: Sequence[int]) -> npt.NDArray[np.float32]:
    idx = (np.asarray(order)[:, None] * CHUNK + np.arange(CHUNK)[None, :]).ravel()
    return clip.audio[idx]


@dataclass(frozen=True, slots=True, eq=False)
class Session:
    kind: str
    clip: str
    person: str
    capture: AVCapture
    note: str = ""


def genuine(
    clip: Clip, challenge: ReadDigitsChallenge, rng: random.Random, limits: AVLimits
) -> tuple[Session, list[int]]:
    order = _timeline(clip, challenge, rng)
    frames = [clip.frames[i] for i in order]
    cap = _capture(frames, _audio_of(clip, order), limits)
    return Session("genuine", clip.name, clip.person, cap), order


def attack(
    kind: str,
    clip: Clip,
    order: list[int],
    other: Clip,
    challenge: ReadDigitsChallenge,
    rng: random.Random,
    limits: AVLimits,
) -> Session | None:
    """One attack on ``clip``'s genuine session (``order``); ``None`` when it cannot be built
    here (``synth`` without espeak-ng)."""
    frames = [clip.frames[i] for i in order]
    sound = _audio_of(clip, order)
    note = ""
    if kind == "dubbed":
        sound = _audio_of(other, _timeline(other, challenge, rng))
        note = other.person
    elif kind == "shifted":
        shift = rng.uniform(*SHIFT_MS) * rng.choice((-1, 1))
        sound = _shift(sound, _audio_of(clip, list(clip.rest)), shift)
        note = f"{shift:+.0f} ms"
    elif kind == "frozen":
        frames = [frames[0]] * len(frames)
    elif kind == "looped":
        frames = [clip.frames[i % len(clip.frames)] for i in range(len(frames))]
    elif kind == "synth":
        voiced = synth_digits(challenge, len(sound), rng)
        if voiced is None:
            return None
        sound = voiced + 0.5 * _audio_of(
            clip, [clip.rest[i % len(clip.rest)] for i in range(len(order))]
        )
        frames = [clip.frames[clip.rest[0]]] * len(frames)
    elif kind == "silent":
        sound = np.zeros_like(sound)
    else:
        raise ValueError(kind)
    return Session(
        kind, clip.name, clip.person, _capture(frames, sound.astype(np.float32), limits), note
    )


def _shift(
    sound: npt.NDArray[np.float32], noise: npt.NDArray[np.float32], shift_ms: float
) -> npt.NDArray[np.float32]:
    n = round(abs(shift_ms) / 1000 * AUDIO_RATE)
    pad = np.resize(noise, n).astype(np.float32)
    moved = np.concatenate([pad, sound[:-n]]) if shift_ms > 0 else np.concatenate([sound[n:], pad])
    return moved.astype(np.float32)


def speech_rms(audio: npt.NDArray[np.float32]) -> float:
    """The RMS of the speech in ``audio``: over the 10-ms hops ≥ 12 dB above the recording's
    floor (its 10th percentile), so the pauses do not dilute it."""
    env = envelope(audio)
    if env.db.size == 0:
        return 0.0
    loud = env.db >= float(np.percentile(env.db, 10)) + 12.0
    if not loud.any():
        return 0.0
    return float(np.sqrt(np.mean(env.rms[loud] ** 2)))


NOISES = ("white", "babble")
BABBLE_TALKERS = 4


def babble(
    clips: Sequence[Clip], person: str, length: int, rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    """A room of people talking, of unit RMS: ``BABBLE_TALKERS`` other people's clips (never
    ``person``'s), each looped from a random point to ``length`` samples, summed.  Unlike white
    noise it is not steady: it has pauses, onsets and a voice's spectrum."""
    others = [c for c in clips if c.person != person and c.audio.size]
    if not others:
        return rng.normal(0.0, 1.0, length).astype(np.float32)
    picks = rng.choice(len(others), size=min(BABBLE_TALKERS, len(others)), replace=False)
    mix = np.zeros(length, dtype=np.float64)
    for i in picks:
        voice = others[int(i)].audio.astype(np.float64)
        start = int(rng.integers(voice.size))
        mix += np.resize(np.roll(voice, -start), length)
    rms = float(np.sqrt(np.mean(mix**2)))
    return (mix / rms if rms > 0 else mix).astype(np.float32)


def with_noise(
    session: Session,
    rms: float,
    rng: np.random.Generator,
    noise: npt.NDArray[np.float32] | None = None,
) -> Session:
    """``session`` with noise of ``rms`` added to its sound (a noisy room, a phone's own hiss):
    white Gaussian noise, or ``noise`` (unit RMS, e.g. :func:`babble`; looped to length); the
    same noise for a genuine session and the attacks on it."""
    audio = session.capture.audio
    added = (
        rng.normal(0.0, rms, audio.shape) if noise is None else rms * np.resize(noise, audio.shape)
    )
    noisy = (audio + added).astype(np.float32)
    capture = replace(session.capture, audio=np.clip(noisy, -1.0, 1.0))
    return replace(session, capture=capture)


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def synth_digits(
    challenge: ReadDigitsChallenge, length: int, rng: random.Random
) -> npt.NDArray[np.float32] | None:
    """espeak-ng reading each digit at ``U(350, 750)`` ms after it appears; ``None`` without it."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    out = np.zeros(length, np.float32)
    voice = "en" if challenge.lang == "en" else "cmn"
    with tempfile.TemporaryDirectory(prefix="shiren-tts-") as folder:
        for step in challenge.steps:
            path = Path(folder) / "d.wav"
            word = PROMPTS[challenge.lang][step.digit]
            subprocess.run(
                [exe, "-v", voice, "-s", str(rng.randint(150, 190)), "-w", str(path), word],
                check=True,
                capture_output=True,
                timeout=20,
            )
            wav = _read_wav(path)
            at = round((step.show_ms + rng.uniform(*LATENCY_MS)) / 1000 * AUDIO_RATE)
            take = wav[: max(0, length - at)]
            out[at : at + len(take)] += take
    return out


def _read_wav(path: Path) -> npt.NDArray[np.float32]:
    with wave.open(str(path), "rb") as w:
        rate, raw = w.getframerate(), w.readframes(w.getnframes())
    x = np.frombuffer(raw, dtype=np.int16).astype(np.float32) / 32768.0
    loud = np.flatnonzero(np.abs(x) > 1e-3)
    x = x[loud[0] : loud[-1] + 1] if loud.size else x
    t = np.arange(0, len(x) / rate, 1.0 / AUDIO_RATE)
    out: npt.NDArray[np.float32] = np.interp(t, np.arange(len(x)) / rate, x).astype(np.float32)
    return out * np.float32(0.5)


__all__ = [
    "ATTACKS",
    "Clip",
    "Session",
    "attack",
    "espeak_available",
    "genuine",
    "load_clip",
    "speech_rms",
    "synth_digits",
    "with_noise",
]
