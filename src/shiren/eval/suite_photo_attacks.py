"""Photo attacks of the liveness suite: a print or a screen held up and moved as asked.

The attacker is adaptive: it knows the challenge and turns the flat photo the asked way in every
turn window and tilts it in every nod window (:func:`plane_homography` renders the plane in true
perspective, so a strong rotation foreshortens one side as a real print does), and the screen's
flash lights it like a face.  What should still give it away is that it is flat (no parallax) and,
with :func:`build_print_artifacts`, the print's or screen's texture.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import cv2
import numpy as np

from shiren.core.geometry import RGBImage
from shiren.eval.suite_effects import face_mask, jpeg, reflect, screen_colour, session_frames
from shiren.eval.suite_material import DEFAULT_PARAMS, MESH_FACE_POINTS, Photo, SuiteParams
from shiren.liveness.challenge import TURNS, Action, Challenge, draw_challenge
from shiren.liveness.config import Level, LivenessConfig
from shiren.liveness.frames import FrameSequence

SCENE_SIZE = (960, 540)
"""``(width, height)`` of the attack scenes: the recording's own frame size."""
CAMERA_FPS = 15.0
FOCAL_PX = 1000.0
"""Focal length of the simulated camera for 960 px wide frames (≈ 51° horizontal field)."""
YAW_SIGN = -1.0
"""Sign of the plane rotation about the vertical axis (see :func:`plane_homography`) that the
face mesh reads as the subject turning to their own left (positive yaw).  Measured on the
recording's neutral frame: a plane rotated by ``-40°`` is read as yaw ≈ +25°."""


def plane_homography(
    print_size: tuple[int, int],
    *,
    yaw_deg: float,
    pitch_deg: float,
    roll_deg: float,
    scale: float,
    centre: tuple[float, float],
    scene_size: tuple[int, int] = SCENE_SIZE,
    focal_px: float = FOCAL_PX,
) -> np.ndarray:
    """The 3×3 homography taking print pixels to scene pixels for a flat print rotated in 3-D.

    The print's centre sits on the camera ray through ``centre`` at the depth where one print
    pixel spans ``scale`` scene pixels when frontal; it is rotated about its vertical axis
    (``yaw_deg``), its horizontal axis (``pitch_deg``) and the viewing axis (``roll_deg``).
    Perspective (not affine) so that a strong rotation foreshortens one side, as a real print does.
    """
    pw, ph = print_size
    sw, sh = scene_size
    cx, cy = sw / 2.0, sh / 2.0
    k = np.array([[focal_px, 0, cx], [0, focal_px, cy], [0, 0, 1.0]])
    a = np.array([[1.0, 0, -pw / 2.0], [0, 1.0, -ph / 2.0], [0, 0, 1.0]])
    y, p, r = (math.radians(v) for v in (yaw_deg, pitch_deg, roll_deg))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    rot = rz @ ry @ rx
    depth = focal_px / scale
    shift = np.array(
        [(centre[0] - cx) * depth / focal_px, (centre[1] - cy) * depth / focal_px, depth]
    )
    m = np.column_stack([rot[:, 0], rot[:, 1], shift])
    h = k @ m @ a
    return np.asarray(h / h[2, 2], dtype=np.float64)


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3.0 - 2.0 * x)


@dataclass(frozen=True, slots=True)
class _Move:
    start_ms: float
    rise_ms: float
    hold_ms: float
    amplitude: float
    axis: str

    def at(self, t: float) -> float:
        up = _smoothstep((t - self.start_ms) / self.rise_ms)
        down = _smoothstep((t - self.start_ms - self.rise_ms - self.hold_ms) / self.rise_ms)
        return self.amplitude * (up - down)


def _moves(challenge: Challenge, rng: random.Random, max_deg: float) -> list[_Move]:
    """The adaptive attacker's plan: in every turn window the print turns the asked way, in every
    nod window it tilts, each time back to frontal before the window ends."""
    out = []
    for step in challenge.actions:
        if step.action not in (*TURNS, Action.NOD):
            continue
        window = float(step.end_ms - step.start_ms)
        rise = rng.uniform(0.15, 0.25) * window
        hold = rng.uniform(0.1, 0.25) * window
        start = step.start_ms + rng.uniform(0.05, 0.3) * window
        deg = rng.uniform(0.55, 1.0) * max_deg
        if step.action is Action.NOD:
            out.append(_Move(start, rise, hold, rng.choice((-1.0, 1.0)) * deg * 0.7, "pitch"))
        else:
            sign = YAW_SIGN if step.action is Action.TURN_LEFT else -YAW_SIGN
            out.append(_Move(start, rise, hold, sign * deg, "yaw"))
    return out


def _background(rng: random.Random, size: tuple[int, int]) -> RGBImage:
    """A static room-like scene: smooth random colour field plus sensor noise."""
    w, h = size
    nrng = np.random.default_rng(rng.getrandbits(32))
    coarse = nrng.uniform(40, 200, size=(3, 5, 3)).astype(np.float32)
    field_ = np.asarray(cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC), np.float32)
    field_ += nrng.normal(0, 3, size=field_.shape).astype(np.float32)
    return np.ascontiguousarray(np.clip(field_, 0, 255).astype(np.uint8))


def _print_artefacts(image: RGBImage, rng: random.Random) -> tuple[RGBImage, str]:
    """A printed-paper look (halftone, reduced gamut, paper texture) or a screen look (moiré
    grating, gamma, glare, optional bezel), chosen at random."""
    nrng = np.random.default_rng(rng.getrandbits(32))
    img = image.astype(np.float32)
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.5:
        grey = img.mean(axis=2, keepdims=True)
        img = grey + 0.8 * (img - grey)  # desaturated inks
        img = 18.0 + 0.84 * img  # paper white and ink black are not 255 and 0
        cell = rng.uniform(3.0, 5.0)
        ang = math.radians(rng.uniform(10, 80))
        u = (xx * math.cos(ang) + yy * math.sin(ang)) / cell
        v = (-xx * math.sin(ang) + yy * math.cos(ang)) / cell
        screen = 0.5 + 0.25 * (np.cos(2 * math.pi * u) + np.cos(2 * math.pi * v))
        dots = (img / 255.0 > screen[..., None]).astype(np.float32) * 255.0
        img = 0.55 * img + 0.45 * dots
        grain = cv2.GaussianBlur(nrng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.5)
        img *= (1.0 + 0.05 * grain)[..., None]
        kind = "print"
    else:
        gamma = rng.uniform(0.8, 1.25)
        img = 255.0 * (img / 255.0) ** gamma
        period = rng.uniform(2.2, 3.2)
        ang = math.radians(rng.uniform(-8, 8))
        grating = 0.5 + 0.5 * np.sin(
            2 * math.pi * (xx * math.cos(ang) + yy * math.sin(ang)) / period
        )
        img *= (1.0 - 0.14 * grating)[..., None]
        gx, gy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.15, 0.6) * h
        radius = rng.uniform(0.08, 0.2) * max(w, h)
        glare = np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * radius**2))
        img += rng.uniform(60, 140) * glare[..., None]
        kind = "screen"
        if rng.random() < 0.5:
            pad = max(4, round(0.06 * min(w, h)))
            img = np.asarray(
                cv2.copyMakeBorder(
                    img, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(18, 18, 20)
                ),
                np.float32,
            )
            kind = "screen+bezel"
    return np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8)), kind


def build_photo_homography(
    photo: Photo,
    config: LivenessConfig,
    *,
    level: Level | str = Level.NORMAL,
    seed: int,
    params: SuiteParams = DEFAULT_PARAMS,
    now: float | None = None,
    artefacts: bool = False,
    face_iod_px: tuple[float, float] = (85.0, 110.0),
) -> tuple[Challenge, FrameSequence]:
    """A still photo held up to the camera and moved as the challenge asks (an adaptive attacker:
    it turns the print the asked way in each turn window and tilts it in each nod window), lit by
    the screen's flash like a face would be, every frame JPEG re-encoded."""
    challenge = draw_challenge(config, level, seed=seed, now=now)
    rng = random.Random(f"photo:{seed}")
    print_img, mesh, kind = photo.image, photo.mesh, "photo"
    if artefacts:
        before = print_img.shape[:2]
        print_img, kind = _print_artefacts(print_img, rng)
        off = (print_img.shape[1] - before[1]) / 2.0, (print_img.shape[0] - before[0]) / 2.0
        mesh = mesh.copy()
        mesh[:, 0] += off[0]
        mesh[:, 1] += off[1]
    ph, pw = print_img.shape[:2]
    iod = float(np.linalg.norm(mesh[33, :2] - mesh[263, :2]))
    scale = rng.uniform(*face_iod_px) / max(iod, 1.0)
    moves = _moves(challenge, rng, params.max_plane_deg)
    sw, sh = SCENE_SIZE
    base_centre = (sw / 2 + rng.uniform(-60, 60), sh / 2 + rng.uniform(-30, 30))
    face_c = mesh[:MESH_FACE_POINTS, :2].mean(axis=0)
    # centre the *face* (not the print) at base_centre when frontal
    off_px = (face_c - np.array([pw / 2.0, ph / 2.0])) * scale
    wob = [rng.uniform(0, 2 * math.pi) for _ in range(4)]
    background = _background(rng, SCENE_SIZE)
    times: list[float] = []
    t = 0.0
    while t <= challenge.duration_ms:
        times.append(round(t, 3))
        t += 1000.0 / CAMERA_FPS * rng.uniform(0.97, 1.03)
    images: list[RGBImage] = []
    pts3 = np.column_stack([mesh[:MESH_FACE_POINTS, :2], np.ones(MESH_FACE_POINTS)])
    for k, tk in enumerate(times):
        yaw = sum(m.at(tk) for m in moves if m.axis == "yaw")
        pitch = sum(m.at(tk) for m in moves if m.axis == "pitch")
        s = tk / 1000.0
        roll = 3.0 * math.sin(0.9 * s + wob[0])
        jitter = (6.0 * math.sin(1.3 * s + wob[1]), 4.0 * math.sin(1.7 * s + wob[2]))
        zoom = scale * (1.0 + 0.03 * math.sin(0.7 * s + wob[3]))
        centre = (
            base_centre[0] - off_px[0] + jitter[0],
            base_centre[1] - off_px[1] + jitter[1],
        )
        hom = plane_homography(
            (pw, ph), yaw_deg=yaw, pitch_deg=pitch, roll_deg=roll, scale=zoom, centre=centre
        )
        warped = cv2.warpPerspective(print_img, hom, SCENE_SIZE, flags=cv2.INTER_LINEAR)
        cover = cv2.warpPerspective(
            np.ones((ph, pw), np.float32), hom, SCENE_SIZE, flags=cv2.INTER_LINEAR
        )
        frame = (cover[..., None] * warped + (1 - cover[..., None]) * background).astype(np.uint8)
        rgb = screen_colour(challenge, times, k, params.display_delay_frames)
        if rgb is not None:
            moved = pts3 @ hom.T
            face = moved[:, :2] / moved[:, 2:3]
            frame = reflect(frame, face_mask(frame.shape, face), rgb, params.colour_gain)
        images.append(jpeg(frame, params.jpeg_quality))
    return challenge, session_frames(images, times, config, challenge.nonce, f"{kind}:{photo.name}")


def build_print_artifacts(
    photo: Photo,
    config: LivenessConfig,
    *,
    level: Level | str = Level.NORMAL,
    seed: int,
    params: SuiteParams = DEFAULT_PARAMS,
    now: float | None = None,
) -> tuple[Challenge, FrameSequence]:
    """:func:`build_photo_homography` with printed-paper or screen artefacts on the photo."""
    return build_photo_homography(
        photo, config, level=level, seed=seed, params=params, now=now, artefacts=True
    )


__all__ = [
    "CAMERA_FPS",
    "FOCAL_PX",
    "SCENE_SIZE",
    "YAW_SIGN",
    "build_photo_homography",
    "build_print_artifacts",
    "plane_homography",
]
