"""Mixed load — enrolments and step-ups at a fixed arrival rate — against a RUNNING shiren
server, with the RSS of every worker sampled (docs/RELIABILITY.md "Load").

    scripts/load_mixed.sh /tmp/mixed --rate 2 --duration 600     # the whole thing, see there
    python scripts/load_mixed.py --api-key shk_… --rate 2 --duration 60 --server-pid PID

1. **Set-up** (not timed): ``--subjects`` subjects enrolled *and bound* exactly as
   ``scripts/load_stepup.py`` does (full capture from the live recording; the anti-fraud review
   approved by the lender's reviewer) — the step-ups need bound faces.
2. **Load**: an **open loop**: operations arrive at ``--rate`` per second (exponential gaps, a
   Poisson stream: arrivals do not wait for answers, as borrowers do not), ``--enrol-share`` of
   them enrolments, the rest step-ups:

   * *enrolment*: ``POST /v1/subjects`` (a new subject, a new ID number, the reference photo) →
     an ``--frames``-frame capture answering the enrolment session → ``POST …/frames``;
   * *step-up*: ``POST /v1/events`` (a 50,000 CNY disbursement: level ``high``) for a bound
     subject → an ``--frames``-frame capture → ``POST …/frames``.

   Each request's latency is measured from sending it to its answer; ``schedule_lag_ms`` says
   how late operations *started* against their arrival time (it grows without bound when the
   rate is more than the machine holds: then the run is not sustained, whatever the latencies).
3. **Memory**: with ``--server-pid`` (the ``shiren serve`` supervisor), the RSS of the
   supervisor and of every worker process (``/proc/<pid>/status`` ``VmRSS``) is sampled every
   ``--rss-interval`` seconds; the report gives each worker's RSS after ``--warmup-s`` and at
   the end, and the growth between them.

An **error** is any answer that is not a 2xx, and any request that got no answer (a transport
error).  A decision of ``retry`` / ``review`` / ``fallback`` is an answer, not an error: 8 frames
cannot pass a 3–4 action challenge, and one recording stands in for every borrower, so the
anti-fraud checks flag duplicates (docs/LOAD.md explains the load model and its honesty notes);
those decisions are counted by outcome.  Answers the server gave *without* running the models
(``limit.locked``: the subject's retry limit; ``liveness.replay_suspected``) are counted apart
and excluded from the ``judged`` latencies.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import random
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load_stepup as ls  # the step-up generator: recording, captures, set-up

from shiren.client import Check, ShirenApiError, ShirenClient
from shiren.liveness.challenge import parse_challenge

SHORTCUTS = {"limit.locked", "liveness.replay_suspected"}
LFW = ls.SHARED / "lfw_view2" / "lfw-deepfunneled"


def load_id_number(n: int) -> str:
    """A synthetic GB 11643 number, unique for n < 14 million (birth dates 1940–1979, so never
    one of the set-up's 1990 numbers)."""
    born = dt.date(1940, 1, 1) + dt.timedelta(days=n // 1000)
    body = f"110102{born:%Y%m%d}{n % 1000:03d}"
    total = sum(int(d) * w for d, w in zip(body, ls.ID_WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


def valid_times(times: list[float], n_frames: int) -> bool:
    """What the server accepts: ``n_frames`` times from 0 up, strictly increasing, no gap above
    the generator's MAX_GAP_MS (the server's limit is 1,500 ms)."""
    steps = [b - a for a, b in itertools.pairwise(times)]
    return len(times) >= n_frames and times[0] >= 0 and all(0 < s <= ls.MAX_GAP_MS for s in steps)


class Photos:
    """``--captures photos``: every capture is a different person's photo (LFW), held still for
    8 frames at a random camera placement.  Why: the replay guard rightly recognises the one live
    recording's frames after a few captures (``liveness.replay_suspected``, answered without
    running the models), so with ``--captures recording`` most captures cost little; distinct
    photos make every capture run the whole check (decode, mesh, PAD, 1:1 match, anti-fraud) —
    the cost of distinct borrowers.  Such a capture cannot pass (a still photo, another face)."""

    def __init__(self, root: Path) -> None:
        self.paths = sorted(root.glob("*/*.jpg"))
        if not self.paths:
            raise SystemExit(f"no photos under {root}")
        random.shuffle(self.paths)
        self.next = 0
        self.lock = threading.Lock()

    def capture(self, n_frames: int) -> tuple[list[bytes], list[float]]:
        with self.lock:
            path = self.paths[self.next % len(self.paths)]
            self.next += 1
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        face = cv2.resize(image, (540, 540), interpolation=cv2.INTER_CUBIC)
        canvas = cv2.copyMakeBorder(face, 0, 0, 210, 210, cv2.BORDER_REPLICATE)  # 960 × 540
        frames = ls.placed([canvas], ls.framing(random.Random()))
        return frames * n_frames, [k * 300.0 for k in range(n_frames)]


# -- memory -------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry))
    return out


def _rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cmd(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@dataclass
class RssSampler:
    """Samples the supervisor's and its workers' RSS in a thread until stopped."""

    server_pid: int
    interval_s: float
    samples: list[dict[str, Any]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, t0: float) -> None:
        while not self.stop.is_set():
            procs = {"supervisor": self.server_pid}
            for pid in _children(self.server_pid):
                if "spawn_main" in _cmd(pid):
                    procs[f"worker-{pid}"] = pid
            row: dict[str, Any] = {"t_s": round(time.monotonic() - t0, 1)}
            for name, pid in procs.items():
                rss, cpu = _rss_kib(pid), _cpu_s(pid)
                if rss is not None and cpu is not None:
                    row[name] = rss
                    row[f"cpu_s:{name}"] = round(cpu, 1)
            self.samples.append(row)
            self.stop.wait(self.interval_s)

    def summary(self, warmup_s: float) -> dict[str, Any]:
        if not self.samples:
            return {}
        names = sorted({k for s in self.samples for k in s if k != "t_s" and ":" not in k})
        out: dict[str, Any] = {}
        for name in names:
            series = [(s["t_s"], s[name]) for s in self.samples if name in s]
            after = [v for t, v in series if t >= warmup_s] or [series[-1][1]]
            warm, end = after[0], series[-1][1]
            out[name] = {
                "rss_mib_start": round(series[0][1] / 1024, 1),
                "rss_mib_after_warmup": round(warm / 1024, 1),
                "rss_mib_end": round(end / 1024, 1),
                "rss_mib_max": round(max(v for _, v in series) / 1024, 1),
                "growth_after_warmup_pct": round(100.0 * (end - warm) / warm, 1),
                "cpu_s_during_run": round(
                    self.samples[-1].get(f"cpu_s:{name}", 0.0)
                    - next(s[f"cpu_s:{name}"] for s in self.samples if f"cpu_s:{name}" in s),
                    1,
                ),
                "samples": len(series),
            }
        return out


# -- load ---------------------------------------------------------------------------------------


@dataclass
class Tally:
    ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    judged_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    lag_ms: list[float] = field(default_factory=list)
    per_minute: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    ops: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def timed(self, kind: str, minute: int, ms: float) -> None:
        with self.lock:
            self.ms[kind].append(ms)
            self.per_minute[minute].append(ms)

    def check(self, kind: str, check: Check, ms: float) -> None:
        with self.lock:
            self.outcomes[f"{kind}:{check.decision}"] += 1
            self.reasons.update(check.reasons)
            if SHORTCUTS & set(check.reasons):
                self.outcomes[f"{kind}:shortcut"] += 1
            else:
                self.judged_ms[kind].append(ms)

    def error(self, kind: str, what: str) -> None:
        with self.lock:
            self.errors[f"{kind}:{what}"] += 1


class Runner:
    def __init__(
        self,
        args: argparse.Namespace,
        source: ls.SourceVideo,
        reference: bytes,
        pool: ls.Pool,
        run_seq: int,
    ) -> None:
        self.args = args
        self.source = source
        self.reference = reference
        self.pool = pool
        self.tally = Tally()
        self.local = threading.local()
        self.t0 = time.monotonic()
        self._seq = run_seq
        self._seq_lock = threading.Lock()
        self.clients: list[ShirenClient] = []
        self.photos = Photos(LFW) if args.captures == "photos" else None

    def client(self) -> ShirenClient:
        c: ShirenClient | None = getattr(self.local, "client", None)
        if c is None:
            c = ShirenClient(self.args.base_url, self.args.api_key, timeout=120)
            self.local.client = c
            with self._seq_lock:
                self.clients.append(c)
        return c

    def next_seq(self) -> int:
        with self._seq_lock:
            self._seq += 1
            return self._seq

    def _call(self, kind: str, fn: Any) -> tuple[Any, float] | None:
        """One request: its answer and latency (ms), or None after counting the error."""
        ts = time.perf_counter()
        try:
            value = fn()
        except ShirenApiError as exc:
            self.tally.error(kind, f"{exc.status}:{exc.code}")
            return None
        except Exception as exc:  # transport: no answer at all
            self.tally.error(kind, f"transport:{type(exc).__name__}")
            return None
        ms = (time.perf_counter() - ts) * 1000
        self.tally.timed(kind, int((time.monotonic() - self.t0) // 60), ms)
        return value, ms

    def _frames(self, challenge_doc: dict[str, Any]) -> tuple[list[bytes], list[float]]:
        if self.photos is not None:
            return self.photos.capture(self.args.frames)
        challenge = parse_challenge(challenge_doc)
        if ls.answerable(self.source, challenge):
            frames, times = ls.capture(self.source, challenge, self.args.frames)
            if valid_times(times, self.args.frames):
                return frames, times
            # the recording has no frame near some of the even time steps of this challenge:
            # an upload the server would rightly refuse (400), so send stills as for an
            # unanswerable challenge (the server still judges them fully)
            with self.tally.lock:
                self.tally.outcomes["capture:timeline_gap_stills_sent"] += 1
        return ls.still_capture(self.source, self.args.frames)

    def _submit(self, kind: str, session: Any) -> Check | None:
        frames, times = self._frames(session.challenge)
        done = self._call(
            kind, lambda: self.client().submit_frames(session.id, session.nonce, frames, times)
        )
        if done is None:
            return None
        check, ms = done
        self.tally.check(kind, check, ms)
        return check  # type: ignore[no-any-return]

    def enrolment(self) -> None:
        seq = self.next_seq()
        done = self._call(
            "enrol",
            lambda: self.client().enrol(
                external_ref=f"mixed-{seq}",
                name="压测用户",
                id_number=load_id_number(seq),
                consent=ls.CONSENT,
                reference_image=self.reference,
            ),
        )
        if done is not None:
            self._submit("submit_enrol", done[0].session)

    def step_up(self) -> None:
        sid, in_budget = self.pool.take()
        if not in_budget:
            with self.tally.lock:
                self.tally.outcomes["stepup:over_subject_budget"] += 1
        done = self._call(
            "event",
            lambda: self.client().post_event(
                sid, "disbursement", amount_minor=self.args.amount_minor
            ),
        )
        if done is None:
            return
        step = done[0]
        if step.session is None:
            with self.tally.lock:
                self.tally.outcomes["stepup:not_needed"] += 1
            return
        check = self._submit("submit_stepup", step.session)
        if check is not None and check.passed:
            self.pool.passed(sid)

    def op(self, kind: str, due: float) -> None:
        lag = (time.monotonic() - due) * 1000
        with self.tally.lock:
            self.tally.lag_ms.append(lag)
            self.tally.ops[kind] += 1
        try:
            self.enrolment() if kind == "enrolment" else self.step_up()
        except Exception as exc:  # a bug of the generator must not pass for a quiet server
            self.tally.error(kind, f"generator:{type(exc).__name__}")

    def run(self) -> float:
        rng = random.Random()
        args = self.args
        self.t0 = time.monotonic()
        deadline = self.t0 + args.duration
        due = self.t0
        with ThreadPoolExecutor(args.max_inflight) as ex:
            while True:
                due += rng.expovariate(args.rate)
                if due >= deadline:
                    break
                time.sleep(max(0.0, due - time.monotonic()))
                kind = "enrolment" if rng.random() < args.enrol_share else "step_up"
                ex.submit(self.op, kind, due)
        for c in self.clients:
            c.close()
        return time.monotonic() - self.t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--subjects", type=int, default=40, help="bound subjects for step-ups")
    parser.add_argument("--rate", type=float, default=1.0, help="operations per second")
    parser.add_argument("--enrol-share", type=float, default=0.25)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument(
        "--captures",
        choices=["recording", "photos"],
        default="recording",
        help="recording: the live recording answering the challenge (docs/LOAD.md; the replay "
        "guard answers most of them without running the models); photos: a different person's "
        "still photo per capture (every capture runs the whole check)",
    )
    parser.add_argument("--amount-minor", type=int, default=5_000_000)
    parser.add_argument("--max-inflight", type=int, default=64)
    parser.add_argument("--setup-concurrency", type=int, default=2)
    parser.add_argument("--server-pid", type=int, help="shiren serve's pid: sample worker RSS")
    parser.add_argument("--rss-interval", type=float, default=5.0)
    parser.add_argument("--warmup-s", type=float, default=60.0)
    parser.add_argument("--nice", type=int, default=10)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.nice:
        os.nice(args.nice)

    source, reference = ls.load_recording()
    run = f"{random.randrange(16**6):06x}"
    t_setup = time.perf_counter()
    base = random.randrange(1000)
    with (
        ShirenClient(args.base_url, args.api_key, timeout=300) as client,
        ThreadPoolExecutor(args.setup_concurrency) as ex,
    ):
        enrolled = list(
            ex.map(
                lambda i: ls.enrol_one(client, source, reference, base + i, run),
                range(args.subjects),
            )
        )
    bound = [sid for sid, _ in enrolled if sid is not None]
    setup_s = time.perf_counter() - t_setup
    print(f"set-up: {len(bound)}/{args.subjects} bound in {setup_s:.0f} s", file=sys.stderr)
    if not bound:
        print(json.dumps({"error": "no subject bound", "enrolment": [e for _, e in enrolled]}))
        return 1

    runner = Runner(args, source, reference, ls.Pool(bound), random.randrange(10**6) * 10)
    sampler = None
    if args.server_pid:
        sampler = RssSampler(args.server_pid, args.rss_interval)
        threading.Thread(target=sampler.run, args=(time.monotonic(),), daemon=True).start()
    elapsed = runner.run()
    if sampler is not None:
        sampler.stop.set()
    t = runner.tally
    every = [v for values in t.ms.values() for v in values]
    n_errors = sum(t.errors.values())
    n_requests = len(every) + n_errors
    report = {
        "base_url": args.base_url,
        "rate_per_s": args.rate,
        "enrol_share": args.enrol_share,
        "frames_per_capture": args.frames,
        "captures": args.captures,
        "duration_s": round(elapsed, 1),
        "subjects_bound": len(bound),
        "subjects_asked": args.subjects,
        "setup_s": round(setup_s, 1),
        "operations": dict(t.ops),
        "operations_per_s": round(sum(t.ops.values()) / elapsed, 2),
        "requests": n_requests,
        "requests_per_s": round(n_requests / elapsed, 2),
        "errors": n_errors,
        "error_kinds": dict(t.errors),
        "all_requests_ms": ls.pct(every),
        "by_request_ms": {k: ls.pct(v) for k, v in sorted(t.ms.items())},
        "judged_submit_ms": {k: ls.pct(v) for k, v in sorted(t.judged_ms.items())},
        "p99_by_minute_ms": {
            str(m): ls.pct(v)["p99"] for m, v in sorted(t.per_minute.items()) if len(v) > 1
        },
        "schedule_lag_ms": ls.pct(t.lag_ms),
        "outcomes": dict(t.outcomes),
        "reasons": dict(t.reasons.most_common()),
        "rss": sampler.summary(args.warmup_s) if sampler else None,
        "rss_samples": sampler.samples if sampler else None,
    }
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
