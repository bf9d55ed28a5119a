"""A challenge answered by an uploaded recording (issue 17's record-and-upload fallback).

Some browsers cannot stream the camera to the page (old in-app web views, a page opened without
the camera API), yet every phone can film a short video with its own camera app and hand the file
to an ``<input type=file capture>``.  Such a recording answers a ``recorded``
:class:`~shiren.liveness.challenge.Variant` challenge: the same signed, single-use session and
nonce, a fresh random list of actions (a head turn always), no colour flash and no time windows —
the borrower reads the list, films, and does the actions in that order at their own pace.

Two pure steps live here:

* :func:`decode_recording` — the uploaded bytes to a :class:`FrameSequence`: a bounded size, a
  bounded length, frames sampled every ``sample_ms`` and scaled to the capture page's 640 px
  (the same cost as a live capture), typed errors for anything unreadable;
* :func:`retime` — the action windows found in the recording: each asked action is searched for
  after the previous one's peak (the order is the nonce's), with the very detector the live
  check uses (:func:`shiren.liveness.actions.check_step`: a rise from neutral, a blink that
  reopens, no foreign action inside the window).  An action not found keeps a window after the
  last one found, so the check reports it missing.  The retimed challenge then goes through the
  ordinary check — identity, 3-D motion and passive keyframes follow the found windows.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from shiren.errors import ErrorCode, FramesError
from shiren.liveness.actions import check_step, responses
from shiren.liveness.challenge import ActionStep, Challenge, Variant
from shiren.liveness.config import ActionThresholds, FrameLimits
from shiren.liveness.frames import FrameSequence, validate
from shiren.liveness.signals import Baseline, FaceSignals

MAX_RECORDING_BYTES = 40 * 1024 * 1024
"""A 20-s phone video at a high bit rate is 20–35 MB; more is refused before decoding."""
MAX_RECORDING_MS = 30_000.0
SAMPLE_MS = 80.0
"""One frame per 80 ms, the capture page's own rate."""
TARGET_SIDE_PX = 640
SEARCH_STEP_MS = 120.0
SEARCH_WIDTHS_MS = (1200.0, 1900.0, 2600.0)
"""Window lengths tried at each start, shortest first: a short window keeps the next action
out of this one's (where it would count as foreign)."""
AFTER_PEAK_MS = 150.0


def _error(code: ErrorCode, message: str) -> FramesError:
    return FramesError(message, code=code, detail={})


def decode_recording(
    data: bytes,
    limits: FrameLimits,
    *,
    nonce: str | None = None,
    max_ms: float = MAX_RECORDING_MS,
    sample_ms: float = SAMPLE_MS,
) -> FrameSequence:
    """Frames of an uploaded video (MP4 / MOV / WebM, whatever the bundled FFmpeg reads), sampled
    and scaled like a live capture.  ``video.unreadable`` for anything that is not a video or
    holds no frame; ``input.recording_too_long`` past ``max_ms``."""
    import cv2

    if not data:
        raise _error(ErrorCode.VIDEO_UNREADABLE, "The recording is empty.")
    if len(data) > MAX_RECORDING_BYTES:
        raise _error(ErrorCode.VIDEO_UNREADABLE, "The recording is larger than 40 MiB.")
    with tempfile.TemporaryDirectory(prefix="shiren-rec-") as folder:
        path = Path(folder) / "recording"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        try:
            if not capture.isOpened():
                raise _error(ErrorCode.VIDEO_UNREADABLE, "The recording cannot be decoded.")
            images, times = _sample(capture, limits, max_ms, sample_ms)
        finally:
            capture.release()
    if not images:
        raise _error(ErrorCode.VIDEO_UNREADABLE, "No frame of the recording could be decoded.")
    start = times[0]
    return validate(images, [t - start for t in times], limits, nonce=nonce, source="recording")


def _sample(
    capture: Any, limits: FrameLimits, max_ms: float, sample_ms: float
) -> tuple[list[np.ndarray], list[float]]:
    """Every frame at least ``sample_ms`` after the last one kept, scaled to 640 px, as RGB."""
    import cv2

    images: list[np.ndarray] = []
    times: list[float] = []
    rate = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    rate = rate if 1.0 <= rate <= 240.0 else 30.0
    index = -1
    while capture.grab():
        index += 1
        stamp = float(capture.get(cv2.CAP_PROP_POS_MSEC))
        t = stamp if np.isfinite(stamp) and stamp >= 0 else index * 1000.0 / rate
        if times and t <= times[-1]:
            t = index * 1000.0 / rate
        if t > max_ms:
            raise _error(
                ErrorCode.RECORDING_TOO_LONG, f"The recording is longer than {max_ms / 1000:.0f} s."
            )
        if times and t - times[-1] < sample_ms - 1.0:
            continue
        ok, bgr = capture.retrieve()
        if not ok or bgr is None or bgr.ndim != 3:
            continue
        h, w = bgr.shape[:2]
        if max(h, w) > 8 * limits.max_side_px:
            raise _error(ErrorCode.VIDEO_UNREADABLE, "The recording's frames are huge.")
        scale = TARGET_SIDE_PX / max(h, w)
        if scale < 1.0:
            bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        images.append(np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
        times.append(t)
        if len(images) > limits.max_frames:
            raise _error(ErrorCode.RECORDING_TOO_LONG, "The recording has too many frames.")
    return images, times


def retime(
    challenge: Challenge, signals: FaceSignals, base: Baseline, th: ActionThresholds
) -> Challenge:
    """``challenge`` with its action windows where the recording shows the actions, in order
    (see the module docstring).  Only a ``recorded`` challenge is retimed."""
    if challenge.variant is not Variant.RECORDED or not challenge.actions:
        return challenge
    curves = responses(signals, base, th)
    t = signals.t_ms
    end = float(t[-1]) if t.size else 0.0
    cursor = float(challenge.still_until_ms)
    steps: list[ActionStep] = []
    for asked in challenge.actions:
        found: ActionStep | None = None
        start = cursor
        while found is None and start < end:
            for width in SEARCH_WIDTHS_MS:
                step = ActionStep(asked.action, int(start), int(start + width))
                outcome = check_step(step, signals, curves, th)
                if outcome.detected and outcome.peak_ms is not None:
                    found = step
                    cursor = max(cursor, outcome.peak_ms + AFTER_PEAK_MS)
                    break
            start += SEARCH_STEP_MS
        if found is None:  # missing: a window after the last one, reported as not done
            found = ActionStep(asked.action, int(cursor), int(cursor + SEARCH_WIDTHS_MS[-1]))
            cursor += SEARCH_WIDTHS_MS[-1]
        steps.append(found)
    # windows must not overlap (the check's and the parser's rule): clip each at the next start
    clipped = [
        replace(s, end_ms=max(s.start_ms + 1, min(s.end_ms, steps[i + 1].start_ms)))
        if i + 1 < len(steps)
        else s
        for i, s in enumerate(steps)
    ]
    return replace(challenge, actions=tuple(clipped))


__all__ = ["MAX_RECORDING_BYTES", "MAX_RECORDING_MS", "decode_recording", "retime"]
