"""Live and injected sessions for ``shiren eval injection``, built at run time from recordings.

A **live** session is what the capture page uploads when a real person answers the challenge in
front of a real camera: the recording's frames chosen by the liveness suite's live timeline
(:func:`shiren.eval.suite_timeline.live_timeline`, for the annotated webcam video) or, for the
talking-face clips that hold no head turns, the clip played forwards and backwards over the
challenge (:func:`talking_timeline`: those sessions do not answer the actions, which no
injection feature reads); the flash's reflection rendered as the liveness suite renders it
(:func:`shiren.eval.liveness_suite.render_live`); fresh sensor noise per delivered frame; the
page's timer from a real Chromium trace, its 640-px canvas and JPEG.

Injected sessions (``KINDS``; variants in ``VARIANTS``), from the same recordings:

* ``virtual_camera`` — the recording played by a virtual camera (1280×720 or 640×480,
  letterboxed) into the real page: page timing, no flash response, loops when it runs out;
* ``retimed`` — the recording re-timed to the challenge's windows (the same timeline as a live
  session) and uploaded by a script: ``naive`` keeps the recording's own frame times and
  uploads at once; ``careful`` writes page-like times (80 ms ± a little) and waits as long as a
  page would; ``careful_tinted`` also tints the face to the challenge's colours in software;
* ``reencoded`` — a stream that answers everything live (actions, flash at a plausible lag,
  fresh noise: what a real-time face-swap or a relayed camera would give) but passes through
  one more lossy codec before the page: JPEG on a shifted grid, JPEG on the page's grid, or
  MPEG-4;
* ``screen_replay`` — an earlier genuine capture (another challenge) replayed full-screen and
  either grabbed by screen-capture software (``screen_grab``) or filmed by a phone camera off the
  display (``camera``: subpixels, moiré, blur, fresh noise, and the new flash lighting the screen
  a little).

Every builder is a pure function of its inputs and the seed; nothing is written anywhere.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from shiren.core.geometry import RGBImage
from shiren.eval.injection_sim import (
    NoiseBank,
    SimParams,
    display_and_film,
    display_and_grab,
    display_gamut,
    fit_box,
    jpeg_recode,
    latest_index,
    mpeg4_recode,
    page_draw,
    page_frames,
    round_ms,
    uniform_tint,
)
from shiren.eval.suite_annotation import Stretch
from shiren.eval.suite_effects import face_mask, jpeg, reflect, screen_colour
from shiren.eval.suite_material import SourceVideo, SuiteParams
from shiren.eval.suite_timeline import LiveTimeline, draw_answerable, live_timeline
from shiren.liveness.challenge import Challenge, draw_challenge
from shiren.liveness.config import Level, LivenessConfig
from shiren.liveness.frames import FrameSequence, validate
from shiren.liveness.injection_timing import UploadTiming

KINDS = ("live", "virtual_camera", "retimed", "reencoded", "screen_replay")
ATTACK_KINDS = KINDS[1:]
VARIANTS: dict[str, tuple[str, ...]] = {
    "live": ("page",),
    "virtual_camera": ("cam1280", "cam640"),
    "retimed": ("naive", "careful", "careful_tinted"),
    "reencoded": ("jpeg_shifted", "jpeg_aligned", "mpeg4"),
    "screen_replay": ("screen_grab", "camera"),
}
CAMERA_SIZE = (1280, 720)
DISPLAY_SIZE = (1920, 1080)


@dataclass(frozen=True, slots=True, eq=False)
class Recording:
    """One real recording of one person, with its meshes; ``annotated`` ones answer actions."""

    name: str
    person: str
    source: SourceVideo
    annotated: bool
    sha256: str
    path: str

    @property
    def fps(self) -> float:
        t = self.source.times_ms
        return 1000.0 * (len(t) - 1) / (t[-1] - t[0])


@dataclass(frozen=True, slots=True, eq=False)
class BuiltSession:
    kind: str
    variant: str
    recording: str
    person: str
    seed: int
    challenge: Challenge
    frames: FrameSequence
    upload: UploadTiming


@dataclass(slots=True, eq=False)
class Bench:
    """What the builders share: the configuration, the page's timer traces, the noise banks."""

    config: LivenessConfig
    level: Level
    traces: Sequence[Sequence[float]]
    sim: SimParams
    suite: SuiteParams
    now: float
    banks: dict[tuple[int, int], NoiseBank] = field(default_factory=dict)

    def bank(self, shape: tuple[int, ...]) -> NoiseBank:
        key = (int(shape[0]), int(shape[1]))
        if key not in self.banks:
            self.banks[key] = NoiseBank(key, seed=key[0] * 10_007 + key[1])
        return self.banks[key]


# -- shared pieces ------------------------------------------------------------------------------


def talking_timeline(source: SourceVideo, challenge: Challenge, rng: random.Random) -> LiveTimeline:
    """The clip played forwards and backwards from a random frame over the whole challenge."""
    times = source.times_ms
    n = len(times)
    step = (times[-1] - times[0]) / (n - 1)
    cycle = list(range(n)) + list(range(n - 2, 0, -1))
    k = rng.randrange(len(cycle))
    out: list[tuple[int, float]] = []
    t, end = 0.0, float(challenge.duration_ms) + 600.0
    while t < end:
        out.append((cycle[k % len(cycle)], t))
        k += 1
        t += step
    neutral = Stretch(0, n - 1, float(times[0]), float(times[-1]))
    return LiveTimeline(frames=tuple(out), placements=(), neutral=neutral)


def answer(rec: Recording, bench: Bench, seed: int) -> tuple[Challenge, LiveTimeline]:
    """A fresh challenge and the timeline of frames that answers it (see the module docstring)."""
    if rec.annotated:
        available = rec.source.annotation.available(bench.suite.min_confidence)
        challenge, used = draw_answerable(bench.config, bench.level, seed, available, now=bench.now)
        rng = random.Random(f"live:{used}")
        return challenge, live_timeline(rec.source, challenge, rng, bench.suite)
    challenge = draw_challenge(bench.config, bench.level, seed=seed, now=bench.now)
    return challenge, talking_timeline(rec.source, challenge, random.Random(f"talk:{seed}"))


def grab_times(bench: Bench, challenge: Challenge, rng: random.Random) -> list[float]:
    """A real Chromium trace of the page's timer, cut where the page stops filming."""
    trace = bench.traces[rng.randrange(len(bench.traces))]
    end = float(challenge.duration_ms) + 300.0
    return [float(t) for t in trace if t < end]


def page_upload(
    challenge: Challenge, last_ms: float, sim: SimParams, rng: random.Random
) -> UploadTiming:
    """Server-clock moments of a capture filmed by the page in real time."""
    start_nb = challenge.issued_at + rng.uniform(*sim.think_s)
    filming = start_nb + rng.uniform(*sim.start_delay_s)
    return UploadTiming(start_nb, filming + last_ms / 1000.0 + rng.uniform(*sim.upload_s))


def script_upload(challenge: Challenge, sim: SimParams, rng: random.Random) -> UploadTiming:
    """A script that uploads as soon as it has built the frames."""
    start_nb = challenge.issued_at + rng.uniform(*sim.think_s)
    return UploadTiming(start_nb, start_nb + rng.uniform(*sim.script_s))


def _recording_sigma(rec: Recording, sim: SimParams) -> float:
    return random.Random(f"rec-noise:{rec.name}").uniform(*sim.noise_sigma)


def _recorded(rec: Recording, bench: Bench, i: int) -> RGBImage:
    """Source frame ``i`` with the noise it was recorded with (the same every time)."""
    image = rec.source.images[i]
    return bench.bank(image.shape).add(
        image, ("rec", rec.name, i), _recording_sigma(rec, bench.sim)
    )


def _finish(
    kind: str,
    variant: str,
    rec: Recording,
    seed: int,
    challenge: Challenge,
    images: list[RGBImage],
    times: list[float],
    upload: UploadTiming,
    bench: Bench,
) -> BuiltSession:
    frames = validate(images, times, bench.config.frames, nonce=challenge.nonce, source=kind)
    return BuiltSession(kind, variant, rec.name, rec.person, seed, challenge, frames, upload)


class Stream:
    """The frames a camera or a player delivers, timeline entry ``k`` made on demand (once):
    a page grabs only some of them, and rendering is most of a session's cost."""

    def __init__(self, times: Sequence[float], make: Callable[[int], RGBImage]) -> None:
        self.times = list(times)
        self._make = make
        self._cache: dict[int, RGBImage] = {}

    def __len__(self) -> int:
        return len(self.times)

    def __getitem__(self, k: int) -> RGBImage:
        if k not in self._cache:
            self._cache[k] = self._make(k)
        return self._cache[k]

    def mapped(self, fn: Callable[[RGBImage], RGBImage]) -> Stream:
        return Stream(self.times, lambda k: fn(self[k]))

    def all(self) -> list[RGBImage]:
        return [self[k] for k in range(len(self))]


def reflected(
    rec: Recording, timeline: LiveTimeline, colours: Challenge | None, gain: float, delay: int
) -> Callable[[int], RGBImage]:
    """Timeline frame ``k`` with the flash's reflection: frame for frame what
    :func:`shiren.eval.liveness_suite.render_live` renders (a test holds them equal), one
    frame at a time."""
    times = [t for _, t in timeline.frames]

    def make(k: int) -> RGBImage:
        i = timeline.frames[k][0]
        image, mesh = rec.source.images[i], rec.source.meshes[i]
        rgb = screen_colour(colours, times, k, delay)
        if rgb is not None and mesh is not None:
            image = reflect(image, face_mask(image.shape, mesh), rgb, gain)
        return image

    return make


def _live_stream(
    rec: Recording, bench: Bench, seed: int, rng: random.Random
) -> tuple[Challenge, Stream]:
    """A live camera's frames answering a fresh challenge (fresh noise per delivered frame)."""
    challenge, timeline = answer(rec, bench, seed)
    lit = reflected(
        rec, timeline, challenge, bench.suite.colour_gain, bench.sim.display_delay_frames
    )
    sigma = rng.uniform(*bench.sim.noise_sigma)
    bank = bench.bank(rec.source.images[0].shape)
    times = [t for _, t in timeline.frames]
    return challenge, Stream(times, lambda k: bank.add(lit(k), ("live", seed, k), sigma))


def _through_page(
    bench: Bench, challenge: Challenge, stream: Stream, rng: random.Random
) -> tuple[list[RGBImage], list[float]]:
    grabs = grab_times(bench, challenge, rng)
    latency = rng.uniform(*bench.sim.camera_latency_ms)
    times = stream.times
    images = page_frames(
        grabs, lambda t: latest_index(times, t), stream.__getitem__, bench.sim, latency
    )
    return images, grabs


# -- the session kinds ---------------------------------------------------------------------------


def build_live(rec: Recording, bench: Bench, seed: int, variant: str = "page") -> BuiltSession:
    rng = random.Random(f"live-page:{seed}")
    challenge, stream = _live_stream(rec, bench, seed, rng)
    images, grabs = _through_page(bench, challenge, stream, rng)
    upload = page_upload(challenge, grabs[-1], bench.sim, rng)
    return _finish("live", variant, rec, seed, challenge, images, grabs, upload, bench)


def build_virtual_camera(rec: Recording, bench: Bench, seed: int, variant: str) -> BuiltSession:
    rng = random.Random(f"vcam:{seed}")
    challenge = draw_challenge(bench.config, bench.level, seed=seed, now=bench.now)
    size = CAMERA_SIZE if variant == "cam1280" else (640, 480)
    times = rec.source.times_ms
    length = times[-1] + (times[-1] - times[0]) / (len(times) - 1)
    offset = rng.uniform(0.0, length)
    grabs = grab_times(bench, challenge, rng)
    latency = rng.uniform(*bench.sim.camera_latency_ms)
    images = page_frames(
        grabs,
        lambda t: latest_index(times, (offset + max(t, 0.0)) % length),
        lambda i: fit_box(_recorded(rec, bench, i), size),
        bench.sim,
        latency,
    )
    upload = page_upload(challenge, grabs[-1], bench.sim, rng)
    return _finish("virtual_camera", variant, rec, seed, challenge, images, grabs, upload, bench)


def _page_like_times(end_ms: float, rng: random.Random, interval: float = 80.0) -> list[float]:
    """What a careful script writes: the page's timer with a little Gaussian jitter, rounded."""
    jitter = rng.uniform(0.05, 1.0)
    out: list[float] = []
    k = 1
    while k * interval < end_ms:
        t = round_ms(k * interval + rng.gauss(0.0, jitter))
        if not out or t > out[-1]:
            out.append(t)
        k += 1
    return out


def build_retimed(rec: Recording, bench: Bench, seed: int, variant: str) -> BuiltSession:
    rng = random.Random(f"retimed:{seed}")
    challenge, timeline = answer(rec, bench, seed)
    times = [t for _, t in timeline.frames]
    sigma = _recording_sigma(rec, bench.sim)
    bank = bench.bank(rec.source.images[0].shape)
    # The recording's own noise stays with its frame (key: the source frame), tinted or not.
    tint = challenge if variant == "careful_tinted" else None
    lit = reflected(rec, timeline, tint, bench.suite.colour_gain, 0)
    src = Stream(times, lambda k: bank.add(lit(k), ("rec", rec.name, timeline.frames[k][0]), sigma))
    if variant == "naive":
        page = bench.sim
        images = [jpeg(page_draw(img, page.page_width), page.page_quality) for img in src.all()]
        upload = script_upload(challenge, bench.sim, rng)
        return _finish("retimed", variant, rec, seed, challenge, images, times, upload, bench)
    # A script picks its frames itself: no camera latency between the schedule and the tint.
    grabs = _page_like_times(float(challenge.duration_ms) + 300.0, rng)
    images = page_frames(grabs, lambda t: latest_index(times, t), src.__getitem__, bench.sim, 0.0)
    upload = page_upload(challenge, grabs[-1], bench.sim, rng)
    return _finish("retimed", variant, rec, seed, challenge, images, grabs, upload, bench)


def build_reencoded(rec: Recording, bench: Bench, seed: int, variant: str) -> BuiltSession:
    rng = random.Random(f"recode:{seed}")
    challenge, stream = _live_stream(rec, bench, seed, rng)
    if variant == "mpeg4":
        coded = mpeg4_recode(stream.all(), rec.fps)
        stream = Stream(stream.times, coded.__getitem__)
    else:
        quality = rng.randint(*bench.sim.recode_quality)
        shift = (rng.randint(1, 7), rng.randint(1, 7)) if variant == "jpeg_shifted" else (0, 0)
        stream = stream.mapped(lambda img: jpeg_recode(img, quality, shift))
    images, grabs = _through_page(bench, challenge, stream, rng)
    upload = page_upload(challenge, grabs[-1], bench.sim, rng)
    return _finish("reencoded", variant, rec, seed, challenge, images, grabs, upload, bench)


def build_screen_replay(rec: Recording, bench: Bench, seed: int, variant: str) -> BuiltSession:
    rng = random.Random(f"replay:{seed}")
    earlier = build_live(rec, bench, seed + 7_919_000)
    shown = [f.image for f in earlier.frames.frames]
    shown_t = list(earlier.frames.times_ms)
    challenge = draw_challenge(bench.config, bench.level, seed=seed, now=bench.now)
    offset = rng.uniform(0.0, 300.0)
    grabs = grab_times(bench, challenge, rng)
    latency = rng.uniform(*bench.sim.camera_latency_ms)
    if variant == "screen_grab":
        images = page_frames(
            grabs,
            lambda t: latest_index(shown_t, t + offset),
            lambda k: display_and_grab(shown[k], DISPLAY_SIZE, CAMERA_SIZE),
            bench.sim,
            latency,
        )
    else:
        images = _filmed_replay(bench, challenge, shown, shown_t, grabs, offset, latency, rng, seed)
    upload = page_upload(challenge, grabs[-1], bench.sim, rng)
    return _finish("screen_replay", variant, rec, seed, challenge, images, grabs, upload, bench)


def _filmed_replay(
    bench: Bench,
    challenge: Challenge,
    shown: list[RGBImage],
    shown_t: list[float],
    grabs: list[float],
    offset: float,
    latency: float,
    rng: random.Random,
    seed: int,
) -> list[RGBImage]:
    """A phone camera filming the replay off a display, lit a little by the new flash."""
    gamma = rng.uniform(0.85, 1.15)
    white = (rng.uniform(0.92, 1.0), rng.uniform(0.92, 1.0), rng.uniform(0.92, 1.0))
    angle, scale, blur = rng.uniform(-4.0, 4.0), rng.uniform(1.0, 1.15), rng.uniform(0.6, 1.4)
    sigma = rng.uniform(*bench.sim.noise_sigma)
    filmed: dict[int, RGBImage] = {}

    def render(key: tuple[int, float]) -> RGBImage:
        k, t = key
        if k not in filmed:
            screen = display_gamut(shown[k], gamma, white)
            filmed[k] = display_and_film(
                screen, CAMERA_SIZE, angle_deg=angle, scale=scale, blur_px=blur
            )
        step = challenge.colour_at(t)
        lit = uniform_tint(filmed[k], None if step is None else step.rgb, bench.sim.screen_gain)
        return bench.bank(lit.shape).add(lit, ("film", seed, round(t, 3)), sigma)

    return page_frames(
        grabs,
        lambda t: (latest_index(shown_t, t + offset), t),
        render,
        bench.sim,
        latency,
    )


BUILDERS = {
    "live": build_live,
    "virtual_camera": build_virtual_camera,
    "retimed": build_retimed,
    "reencoded": build_reencoded,
    "screen_replay": build_screen_replay,
}


def build(kind: str, rec: Recording, bench: Bench, seed: int, variant: str) -> BuiltSession:
    """One session of ``kind`` / ``variant`` from ``rec``."""
    return BUILDERS[kind](rec, bench, seed, variant)


def frames_for_flash(session: BuiltSession, search_max_ms: float) -> int:
    """How many leading frames the flash features can read (the rest need no mesh)."""
    colours = session.challenge.colours
    if not colours:
        return 0
    until = colours[-1].end_ms + search_max_ms
    return int(np.searchsorted(np.asarray(session.frames.times_ms), until, side="right"))


__all__ = [
    "ATTACK_KINDS",
    "KINDS",
    "VARIANTS",
    "Bench",
    "BuiltSession",
    "Recording",
    "answer",
    "build",
    "frames_for_flash",
    "talking_timeline",
]
