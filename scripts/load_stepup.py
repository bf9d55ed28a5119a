"""Load generator for the step-up check against a RUNNING shiren server (docs/LOAD.md).

    shiren serve --workers 2 &
    shiren tenant create "load"          # prints the API key
    python scripts/load_stepup.py --api-key shk_… --subjects 40 --concurrency 8 --duration 60

1. **Set-up** (not timed): ``--subjects`` subjects are enrolled and their face bound, each with a
   full capture assembled honestly from the annotated live recording, exactly as
   ``examples/e2e_enrol_and_disburse.py`` does (real frames retimed into the server's signed
   windows, the colour flash reflected; challenges the recording cannot answer are renewed).
2. **Load**: ``--concurrency`` threads, each with its own :class:`shiren.client.ShirenClient`,
   loop for ``--duration`` seconds: ``POST /v1/events`` (a disbursement large enough to need a
   fresh check; level as the server's policy returns) → an ``--frames``-frame capture (default 8)
   answering the session's challenge as well as that many frames can → (``--pace film``) the
   challenge's duration of filming → ``POST …/frames``.  Clients start at random moments of a
   ``--ramp-s`` ramp; ``--pace none`` is a closed loop (capacity).  docs/LOAD.md has the model
   and the figures; ``scripts/load_run.sh`` runs it on SQLite and PostgreSQL.

HONESTY NOTES — what the numbers mean:

* 8 frames cannot answer a 3–4 action challenge with a 10-colour flash: the server runs the whole
  check (decode, mesh tracking, PAD, 1:1 match, decision) and answers ``retry``.  The outcome
  counts say so; nothing is counted as a pass that is not one.  The frames are the timeline's
  frames at even time steps (gaps ≤ ``MAX_GAP_MS`` so the upload is valid), covering only the
  challenge's first ~10 s when it is longer.
* The server locks a subject after 5 failures in 3 minutes (30 min cool-off) and answers a locked
  subject *without* running the models.  The generator spreads checks so a subject gets at most
  ``FAIL_BUDGET`` non-pass checks per window; when every subject is spent it goes on anyway and
  those checks are reported apart (``limit.locked``) and excluded from the "judged" latencies.
* Frame assembly runs on the client (same machine, same cores as the server in docs/LOAD.md); its
  time is reported separately and is not in the submit or step-up latency.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from shiren.client import Check, Consent, Session, ShirenApiError, ShirenClient
from shiren.eval.liveness_eval import load_source
from shiren.eval.liveness_suite import (
    SourceVideo,
    SuiteParams,
    live_timeline,
    load_annotation,
    render_live,
)
from shiren.liveness.challenge import Challenge, parse_challenge
from shiren.liveness.config import load_config
from shiren.liveness.frames import load_frames
from shiren.models.mediapipe_face import MediapipeMeshTracker
from shiren.models.registry import get_entry

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL_MOV = SHARED / "zubair_liveness_videos" / "real.mov"
CONSENT = Consent("credit_identity_verification", "2026-01", "a" * 64, 365)
PARAMS = SuiteParams()
UPLOAD_WIDTH_PX = 640
MAX_GAP_MS = 1400.0
"""Below the server's ``frames.max_gap_ms`` (1500): a wider gap is an invalid upload (400)."""
FAIL_WINDOW_S = 180.0
FAIL_BUDGET = 4
"""Non-pass checks per subject per window; the server locks at the 5th failure in 3 minutes."""
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number(seq: int) -> str:
    """A GB 11643 number with a valid check digit (synthetic: 1990-01-01, Beijing Xicheng)."""
    body = f"11010219900101{seq % 1000:03d}"
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, ID_WEIGHTS, strict=True)) % 11]


def jpeg(image: np.ndarray[Any, Any], quality: int = 92) -> bytes:
    ok, blob = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [1, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return bytes(blob.tobytes())


def answerable(source: SourceVideo, challenge: Challenge) -> bool:
    available = source.annotation.available(PARAMS.min_confidence)
    return all(step.action in available for step in challenge.actions)


def framing(rng: random.Random) -> np.ndarray[Any, Any]:
    """A random camera placement (shift ±40 px, scale ±10 %, roll ±4°) applied to every frame
    of one capture: one recording stands in for many borrowers and many captures, and without
    it the server's replay guard rightly answers every capture after the first as a replay,
    *before* running the models, which would make the load test measure a shortcut."""
    angle, scale = rng.uniform(-4.0, 4.0), rng.uniform(0.9, 1.1)
    m = np.asarray(cv2.getRotationMatrix2D((480.0, 270.0), angle, scale), dtype=np.float64)
    m[:, 2] += np.array([rng.uniform(-40.0, 40.0), rng.uniform(-40.0, 40.0)])
    return m


def placed(images: list[np.ndarray[Any, Any]], m: np.ndarray[Any, Any]) -> list[bytes]:
    """JPEGs of ``images`` placed by ``m`` and sent 640 px wide, as the capture page sends them."""
    out = []
    for img in images:
        h, w = img.shape[:2]
        k = UPLOAD_WIDTH_PX / w
        size = (UPLOAD_WIDTH_PX, round(h * k))
        out.append(jpeg(cv2.warpAffine(img, m * k, size, borderMode=cv2.BORDER_REPLICATE), 85))
    return out


def capture(
    source: SourceVideo, challenge: Challenge, n_frames: int | None
) -> tuple[list[bytes], list[float]]:
    """The capture page's stand-in: real frames retimed to answer ``challenge``; with
    ``n_frames``, only that many of them, at even time steps (gaps capped at MAX_GAP_MS)."""
    timeline = live_timeline(source, challenge, random.Random(), PARAMS)
    if n_frames is not None:
        frames = timeline.frames
        span = min(frames[-1][1], MAX_GAP_MS * (n_frames - 1))
        targets = [span * k / (n_frames - 1) for k in range(n_frames)]
        chosen: list[tuple[int, float]] = []
        for target in targets:
            best = min(frames, key=lambda f: abs(f[1] - target))
            if not chosen or best[1] > chosen[-1][1]:
                chosen.append(best)
        timeline = replace(timeline, frames=tuple(chosen))
    images, times, _ = render_live(
        source, timeline, colours=challenge, gain=PARAMS.colour_gain, delay=1
    )
    return placed(list(images), framing(random.Random())), [float(t) for t in times]


def still_capture(source: SourceVideo, n_frames: int) -> tuple[list[bytes], list[float]]:
    """For a challenge the recording cannot answer: ``n_frames`` still frames (the server still
    judges them fully; they cannot pass)."""
    stretch = source.annotation.neutral[0]
    idx = np.linspace(stretch.start_frame, stretch.end_frame, n_frames).astype(int)
    images = [source.images[i] for i in idx]
    return placed(images, framing(random.Random())), [k * 300.0 for k in range(n_frames)]


# -- set-up -------------------------------------------------------------------------------------


def load_recording() -> tuple[SourceVideo, bytes]:
    """The recording with its meshes; the reference photo comes from its START, the captures'
    still phase only from its END (two different images of one person)."""
    frames = load_frames(REAL_MOV, load_config().frames)
    source = load_source(
        frames, MediapipeMeshTracker(get_entry("face-mesh-attention")), load_annotation()
    )
    still = source.images[source.annotation.neutral[0].start_frame + 3]
    source = replace(
        source, annotation=replace(source.annotation, neutral=source.annotation.neutral[1:])
    )
    return source, jpeg(still, 95)


def enrol_one(
    client: ShirenClient, source: SourceVideo, reference: bytes, seq: int, run: str
) -> tuple[str | None, str]:
    """Enrol subject ``seq`` and answer its enrolment session (renewing unanswerable or failed
    ones a few times).  Returns (subject id when bound, last decision/reason)."""
    enrolled = client.enrol(
        external_ref=f"load-{run}-{seq}",
        name="压测用户",
        id_number=id_number(seq),
        consent=CONSENT,
        reference_image=reference,
    )
    sid = enrolled.subject.id
    session: Session | None = enrolled.session
    last = "none"
    for _ in range(12):
        if session is None:
            return sid, "bound"
        challenge = parse_challenge(session.challenge)
        if answerable(source, challenge):
            frames, times = capture(source, challenge, None)
            check = client.submit_frames(session.id, session.nonce, frames, times)
            last = f"{check.decision}:{','.join(check.reasons)}"
            if check.passed:
                return sid, last
            if check.decision == "review" and approve_review(client, check.id):
                return sid, last + "(approved)"
        session = client.post_event(sid, "registration").session
    return None, last


def approve_review(client: ShirenClient, check_id: str) -> bool:
    """The lender's reviewer approves an enrolment the anti-fraud checks sent to review.

    One recording stands in for every load-test subject, so the anti-fraud checks rightly see
    one face under many ID numbers (``fraud.duplicate_face``, ``fraud.batch_background``,
    ``fraud.velocity``) and send each enrolment to manual review; approving binds the face
    only when its liveness passed.  Whether it bound is the answer."""
    for item in client.list_reviews("open"):
        if item["check_id"] == check_id:
            done = client.decide_review(item["id"], "approve", "load-test set-up", "load test")
            return bool(done.get("face_bound"))
    return False


# -- load ---------------------------------------------------------------------------------------


@dataclass
class Pool:
    """Subjects handed to workers round-robin, each within its failure budget."""

    ids: list[str]
    fails: dict[str, deque[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    cursor: int = 0

    def take(self) -> tuple[str, bool]:
        """A subject, and whether it was within budget (False: it may be locked)."""
        with self.lock:
            now = time.monotonic()
            for _ in range(len(self.ids)):
                sid = self.ids[self.cursor % len(self.ids)]
                self.cursor += 1
                q = self.fails.setdefault(sid, deque())
                while q and now - q[0] > FAIL_WINDOW_S:
                    q.popleft()
                if len(q) < FAIL_BUDGET:
                    q.append(now)  # reserve the slot; released on pass
                    return sid, True
            sid = self.ids[self.cursor % len(self.ids)]
            self.cursor += 1
            return sid, False

    def passed(self, sid: str) -> None:
        with self.lock:
            q = self.fails.get(sid)
            if q:
                q.pop()


@dataclass
class Results:
    submit_ms: list[float] = field(default_factory=list)
    submit_judged_ms: list[float] = field(default_factory=list)
    event_ms: list[float] = field(default_factory=list)
    stepup_ms: list[float] = field(default_factory=list)
    stepup_judged_ms: list[float] = field(default_factory=list)
    assemble_ms: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    levels: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(
        self,
        level: str,
        t_event: float,
        t_submit: float,
        assemble: float,
        check: Check | None,
        error: str | None,
        ok: bool,
        in_budget: bool,
    ) -> None:
        """One step-up's times (s) and outcome."""
        # answered without running the models: a locked subject, or a capture the replay guard
        # recognised (both are cheap and would flatter the latency of a real check)
        shortcut = check is not None and bool(
            {"limit.locked", "liveness.replay_suspected"} & set(check.reasons)
        )
        with self.lock:
            self.levels[level] += 1
            self.event_ms.append(t_event * 1000)
            self.submit_ms.append(t_submit * 1000)
            self.assemble_ms.append(assemble * 1000)
            self.stepup_ms.append((t_event + t_submit) * 1000)
            if check is not None and not shortcut:
                self.submit_judged_ms.append(t_submit * 1000)
                self.stepup_judged_ms.append((t_event + t_submit) * 1000)
            tag = "" if ok else "(unanswerable_actions)"
            if check is None:
                self.outcomes[f"submit_error:{error}"] += 1
            else:
                self.outcomes[f"{check.decision}{tag}"] += 1
                self.reasons.update(check.reasons)
            if not in_budget:
                self.outcomes["over_subject_budget"] += 1


def worker(
    args: argparse.Namespace, source: SourceVideo, pool: Pool, res: Results, deadline: float
) -> None:
    with ShirenClient(args.base_url, args.api_key, timeout=120) as client:
        # borrowers do not all press "start" in the same instant: each client begins at a
        # random moment of the ramp (without it the 8 first submits arrive as one burst)
        time.sleep(random.uniform(0.0, args.ramp_s))
        while time.monotonic() < deadline:
            sid, in_budget = pool.take()
            t0 = time.perf_counter()
            try:
                step = client.post_event(sid, "disbursement", amount_minor=args.amount_minor)
            except ShirenApiError as exc:
                with res.lock:
                    res.outcomes[f"event_error:{exc.code}"] += 1
                continue
            t_event = time.perf_counter() - t0
            if step.session is None:
                with res.lock:
                    res.outcomes["not_needed"] += 1
                continue
            challenge = parse_challenge(step.session.challenge)
            ta = time.perf_counter()
            ok = answerable(source, challenge)
            frames, times = (
                capture(source, challenge, args.frames)
                if ok
                else still_capture(source, args.frames)
            )
            assemble = time.perf_counter() - ta
            if args.pace == "film":
                # the borrower films the challenge before anything is sent: the client's own
                # "think time" (the frames were assembled during it, as a phone encodes them)
                film_s = challenge.duration_ms / 1000.0 * args.film_factor
                time.sleep(max(0.0, film_s - assemble))
            ts = time.perf_counter()
            check: Check | None = None
            error: str | None = None
            try:
                check = client.submit_frames(step.session.id, step.session.nonce, frames, times)
            except ShirenApiError as exc:
                error = exc.code
            t_submit = time.perf_counter() - ts
            if check is not None and check.passed:
                pool.passed(sid)
            res.record(step.session.level, t_event, t_submit, assemble, check, error, ok, in_budget)


def pct(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    qs = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {
        "n": len(values),
        "p50": round(qs[49], 1),
        "p95": round(qs[94], 1),
        "p99": round(qs[98], 1),
        "mean": round(statistics.fmean(values), 1),
        "max": round(max(values), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--subjects", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--amount-minor", type=int, default=5_000_000, help="≥ 50,000 CNY: high")
    parser.add_argument("--setup-concurrency", type=int, default=2)
    parser.add_argument(
        "--pace",
        choices=["film", "none"],
        default="film",
        help="film: each client waits the challenge's duration between the event and the submit "
        "(a borrower filming: the target's load model); none: closed loop with no think time "
        "(the server's capacity; latency is then mostly queueing)",
    )
    parser.add_argument(
        "--film-factor", type=float, default=1.0, help="× the challenge's duration (--pace film)"
    )
    parser.add_argument(
        "--ramp-s",
        type=float,
        default=None,
        help="each client starts at a random moment within this many seconds "
        "(default: 10 s with --pace film, 0 with --pace none)",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=10,
        help="lower this generator's CPU priority (it shares the machine with the server)",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.nice:
        os.nice(args.nice)
    if args.ramp_s is None:
        args.ramp_s = 10.0 if args.pace == "film" else 0.0

    source, reference = load_recording()
    run = f"{random.randrange(16**6):06x}"
    t_setup = time.perf_counter()
    base = random.randrange(1000)
    with (
        ShirenClient(args.base_url, args.api_key, timeout=300) as client,
        ThreadPoolExecutor(args.setup_concurrency) as ex,
    ):
        enrolled = list(
            ex.map(
                lambda i: enrol_one(client, source, reference, base + i, run),
                range(args.subjects),
            )
        )
    bound = [sid for sid, _ in enrolled if sid is not None]
    setup_s = time.perf_counter() - t_setup
    print(f"set-up: {len(bound)}/{args.subjects} bound in {setup_s:.0f} s", file=sys.stderr)
    if not bound:
        print(json.dumps({"error": "no subject bound", "enrolment": [e for _, e in enrolled]}))
        return 1

    pool, res = Pool(bound), Results()
    started = time.perf_counter()
    deadline = time.monotonic() + args.duration
    threads = [
        threading.Thread(target=worker, args=(args, source, pool, res, deadline))
        for _ in range(args.concurrency)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    report = {
        "base_url": args.base_url,
        "concurrency": args.concurrency,
        "pace": args.pace,
        "film_factor": args.film_factor if args.pace == "film" else None,
        "ramp_s": args.ramp_s,
        "duration_s": round(elapsed, 1),
        "frames_per_capture": args.frames,
        "subjects_bound": len(bound),
        "subjects_asked": args.subjects,
        "setup_s": round(setup_s, 1),
        "step_ups_completed": len(res.submit_ms),
        "throughput_per_s": round(len(res.submit_ms) / elapsed, 2),
        "submit_ms": pct(res.submit_ms),
        "submit_judged_ms": pct(res.submit_judged_ms),
        "event_ms": pct(res.event_ms),
        "stepup_ms": pct(res.stepup_ms),
        "stepup_judged_ms": pct(res.stepup_judged_ms),
        "client_assembly_ms": pct(res.assemble_ms),
        "levels": dict(res.levels),
        "outcomes": dict(res.outcomes),
        "reasons": dict(res.reasons.most_common()),
    }
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
