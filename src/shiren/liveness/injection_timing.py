"""Injection signals in the frame times: the page's timer, the challenge's schedule, the upload.

The capture page takes a frame every ``frame_interval_ms`` on one ``setInterval`` clock, from
``t ≈ frame_interval_ms`` (the first tick) to ``duration_ms + end_extra_ms``, and rounds every
``t_ms`` to 0.1 ms (:class:`~shiren.liveness.injection_config.PageProtocol`).  Frames that were
*not* filmed by the page — a script uploading a recording's frames, re-timed or not — carry
whatever times the script wrote, and a careless one shows it:

* ``timer_mismatch``: the median interval is not the page's (a recording's 66.7 ms or 40 ms);
* ``schedule_ms``: the first frame is not one tick after the start, or the capture stops well
  before (or runs well past) the end of the challenge;
* ``off_resolution``: the share of times that are not multiples of 0.1 ms;
* ``jitter_ms`` (suspected when *low*): the mean absolute deviation of the intervals from their
  median.  A browser timer jitters (Chromium's by ~0.1 ms between stalls, more around them; a
  browser whose clock has 1 ms resolution by at least that much); a written timeline does not.
  The mean, not the median, of the deviations: with a coarse clock most intervals can be equal;
* ``min_interval_ratio`` (suspected when *low*): two frames closer together than any
  ``setInterval`` can fire them (browsers clamp repeating timers to ≥ 4 ms) — where a re-timed
  recording's segments were joined;
* ``upload_deficit_s``: the frames claim more filming time than the server saw pass between the
  moment the page could first have started (it had the challenge, the borrower consented) and
  the moment the upload arrived.  Physics, not statistics: a positive deficit is impossible for
  a page that films in real time.

A careful attacker who imitates the page's timer passes all of these; they are cheap checks
against cheap attacks, and the frame-content signals do the rest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shiren.liveness.challenge import Challenge
from shiren.liveness.injection_config import PageProtocol

TIMER_CLAMP_MS = 4.0
"""HTML: timers nested more than five levels (a repeating ``setInterval`` is) fire ≥ 4 ms apart."""


@dataclass(frozen=True, slots=True)
class UploadTiming:
    """Server-clock moments (Unix seconds) around one capture.

    ``started_not_before``: the latest moment the server *knows* to precede filming — when the
    capture page fetched the challenge, or recorded the borrower's consent, whichever is later.
    ``received_at``: when the upload's last byte arrived.  Either may be None (not recorded).
    """

    started_not_before: float | None
    received_at: float | None


@dataclass(frozen=True, slots=True)
class TimingFeatures:
    timer_mismatch: float
    schedule_ms: float
    off_resolution: float
    jitter_ms: float
    min_interval_ratio: float
    upload_deficit_s: float | None
    median_interval_ms: float
    first_ms: float
    last_ms: float


def _off_resolution(times: np.ndarray, resolution_ms: float) -> float:
    """Share of times more than 1e-6 ms away from a multiple of ``resolution_ms``."""
    steps = times / resolution_ms
    off = np.abs(steps - np.round(steps)) * resolution_ms > 1e-6
    return float(off.mean())


def _schedule_ms(times: np.ndarray, challenge: Challenge, page: PageProtocol) -> float:
    """How far the capture's start and end are from where the page's would be (ms)."""
    end = float(challenge.duration_ms) + page.end_extra_ms
    start_error = abs(float(times[0]) - page.frame_interval_ms)
    short_by = (end - page.frame_interval_ms) - float(times[-1])
    long_by = float(times[-1]) - (end + page.frame_interval_ms)
    return max(start_error, short_by, long_by, 0.0)


def upload_deficit_s(last_t_ms: float, upload: UploadTiming | None) -> float | None:
    """Claimed filming time minus the time the server saw pass (s); None when not recorded."""
    if upload is None or upload.started_not_before is None or upload.received_at is None:
        return None
    return last_t_ms / 1000.0 - (upload.received_at - upload.started_not_before)


def timing_features(
    times_ms: Sequence[float],
    challenge: Challenge,
    page: PageProtocol,
    upload: UploadTiming | None = None,
) -> TimingFeatures:
    """The timing features of one capture (``times_ms``: its frames' ``t_ms``, ≥ 2 of them,
    strictly increasing as :func:`shiren.liveness.frames.validate` guarantees)."""
    t = np.asarray(times_ms, dtype=np.float64)
    if t.size < 2:
        raise ValueError("timing features need at least two frames")
    steps = np.diff(t)
    median = float(np.median(steps))
    jitter = float(np.mean(np.abs(steps - median)))
    return TimingFeatures(
        timer_mismatch=abs(median - page.frame_interval_ms) / page.frame_interval_ms,
        schedule_ms=_schedule_ms(t, challenge, page),
        off_resolution=_off_resolution(t, page.t_resolution_ms),
        jitter_ms=jitter,
        min_interval_ratio=float(steps.min()) / median if median > 0 else math.inf,
        upload_deficit_s=upload_deficit_s(float(t[-1]), upload),
        median_interval_ms=median,
        first_ms=float(t[0]),
        last_ms=float(t[-1]),
    )


__all__ = [
    "TIMER_CLAMP_MS",
    "TimingFeatures",
    "UploadTiming",
    "timing_features",
    "upload_deficit_s",
]
