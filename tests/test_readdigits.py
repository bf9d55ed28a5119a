"""The read-the-digits challenge (issue 18): signing, decoding errors, onsets and synchrony on
real GRID clips, the check through the CLI, and the evaluation on a small slice."""

from __future__ import annotations

import io
import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from typer.testing import CliRunner

from shiren.errors import ErrorCode, InputError
from shiren.liveness.audio import AVLimits, decode_av, envelope, speech_segments
from shiren.liveness.challenge import draw_challenge
from shiren.liveness.config import load_config
from shiren.liveness.readdigits import (
    PROMPTS,
    ReadDigitsChallenge,
    draw_read_digits,
    load_read_digits,
    parse_read_digits,
)
from shiren.liveness.readdigits_signals import check_onsets, check_sync
from shiren.liveness.signals import face_signals
from tests.conftest import SHARED, require

GRID = SHARED / "grid_talking_faces"
KEY = b"k" * 32


def grid(name: str) -> Path:
    return require(GRID / name)


def encode(
    frames: list[npt.NDArray[np.uint8]] | None,
    audio: npt.NDArray[np.float32] | None,
    *,
    fmt: str = "webm",
    fps: int = 25,
    audio_offset_s: float = 0.0,
) -> bytes:
    """A recording as a browser (WebM: VP8 + Opus) or a phone (MP4: H.264 + AAC) would make."""
    from fractions import Fraction

    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        vs = as_ = None
        if frames is not None:
            vs = out.add_stream("libvpx" if fmt == "webm" else "libx264", rate=fps)
            vs.height, vs.width = frames[0].shape[:2]
            vs.pix_fmt = "yuv420p"
        if audio is not None:
            as_ = out.add_stream("libopus" if fmt == "webm" else "aac", rate=48000)
            as_.layout = "mono"
        if vs is not None and frames is not None:
            for i, image in enumerate(frames):
                vf = av.VideoFrame.from_ndarray(image, format="rgb24")
                vf.pts, vf.time_base = i, Fraction(1, fps)
                for p in vs.encode(vf):
                    out.mux(p)
            for p in vs.encode():
                out.mux(p)
        if as_ is not None and audio is not None:
            up = np.repeat(audio, 3).astype(np.float32)  # 16 kHz → 48 kHz (test material only)
            pcm = (np.clip(up, -1, 1) * 32767).astype(np.int16)
            start = int(audio_offset_s * 48000)
            for k in range(0, len(pcm), 960):
                af = av.AudioFrame.from_ndarray(pcm[None, k : k + 960], format="s16", layout="mono")
                af.sample_rate, af.pts, af.time_base = 48000, start + k, Fraction(1, 48000)
                for p in as_.encode(af):
                    out.mux(p)
            for p in as_.encode():
                out.mux(p)
    return buf.getvalue()


# -- the challenge -----------------------------------------------------------------------------


def test_challenge_draw_sign_and_round_trip() -> None:
    ch = draw_read_digits(lang="zh-CN", seed=7, now=1000.0, key=KEY)
    assert 4 <= len(ch.steps) <= 6
    assert all(a.digit != b.digit for a, b in zip(ch.steps, ch.steps[1:], strict=False))
    assert ch.prompts == tuple(PROMPTS["zh-CN"][s.digit] for s in ch.steps)
    back = load_read_digits(ch.to_json())
    assert back == ch
    assert back.signature_valid(KEY)
    assert not back.signature_valid(b"x" * 32)
    edited = replace(back, steps=(replace(back.steps[0], digit=(back.steps[0].digit + 1) % 10),
                                  *back.steps[1:]))  # fmt: skip
    assert not edited.signature_valid(KEY)
    en = draw_read_digits(lang="en", seed=7, now=1000.0)
    assert en.to_dict()["prompts"][0] in PROMPTS["en"]
    assert en.signature is None
    for s, t in zip(ch.steps, ch.steps[1:], strict=False):  # windows tile the schedule
        assert s.window_end_ms == t.window_start_ms
        assert t.show_ms - s.show_ms >= 900


def test_existing_challenges_still_verify() -> None:
    old = draw_challenge(load_config(), "normal", seed=3, now=0.0, key=KEY)
    assert old.signature_valid(KEY)
    assert "type" not in old.payload()


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.pop("type"),
        lambda d: d.update(lang="fr"),
        lambda d: d["steps"][0].update(digit=10),
        lambda d: d["steps"][1].update(window_start_ms=0),
        lambda d: d.update(steps=[]),
        lambda d: d.update(nonce="!"),
    ],
)
def test_malformed_challenges_are_typed_errors(edit: Any) -> None:
    raw = draw_read_digits(seed=1, now=0.0).to_dict()
    edit(raw)
    with pytest.raises(InputError) as err:
        parse_read_digits(raw)
    assert err.value.code is ErrorCode.CHALLENGE_INVALID


# -- decoding ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip() -> Any:
    return decode_av(grid("P10_pwij3p.mpg").read_bytes(), AVLimits(sample_ms=40.0))


def test_decodes_webm_opus_and_mp4_aac(clip: Any) -> None:
    frames, audio = list(clip.frames), clip.audio
    for fmt in ("webm", "mp4"):
        got = decode_av(encode(frames, audio, fmt=fmt), AVLimits(sample_ms=80.0))
        assert abs(got.audio_ms - 3000) < 200
        assert got.rate == 16000
        assert 36 <= len(got.frames) <= 39
        assert got.frames[0].shape == (288, 360, 3)
        assert np.all(np.diff(got.times_ms) > 0)


def _code(data: bytes, limits: AVLimits | None = None) -> ErrorCode:
    with pytest.raises(InputError) as err:
        decode_av(data, limits)
    return err.value.code


def test_bad_recordings_get_typed_errors(clip: Any) -> None:
    frames, audio = list(clip.frames), clip.audio
    assert _code(b"") is ErrorCode.VIDEO_UNREADABLE
    assert _code(b"\x1aE\xdf\xa3 garbage" * 100) is ErrorCode.VIDEO_UNREADABLE
    assert _code(bytes(random.Random(0).randbytes(50_000))) is ErrorCode.VIDEO_UNREADABLE
    assert _code(b"0" * 2048, AVLimits(max_bytes=1024)) is ErrorCode.RECORDING_TOO_LARGE
    assert _code(encode(frames, None)) is ErrorCode.AUDIO_MISSING
    assert _code(encode(None, audio)) is ErrorCode.VIDEO_UNREADABLE
    assert _code(encode(frames, np.zeros_like(audio))) is ErrorCode.AUDIO_SILENT
    assert _code(encode(frames, audio[: len(audio) // 3])) is ErrorCode.AUDIO_LENGTH_MISMATCH
    late = encode(frames, audio[: len(audio) // 2], audio_offset_s=1.5)
    assert _code(late) is ErrorCode.AV_TIMESTAMPS_MISMATCH
    assert _code(encode(frames, audio), AVLimits(max_ms=1000.0)) is ErrorCode.RECORDING_TOO_LONG
    truncated = encode(frames, audio)[:3000]
    assert _code(truncated) in (ErrorCode.VIDEO_UNREADABLE, ErrorCode.FRAMES_TOO_FEW)


# -- the signals on real speech -----------------------------------------------------------------


def test_speech_onset_of_a_real_clip(clip: Any) -> None:
    segs = speech_segments(envelope(clip.audio))
    assert segs, "no speech found"
    # P10 starts speaking about 0.5 s in (the clip's level rises 40 dB there; by ear too)
    assert 400 <= segs[0].start_ms <= 600
    assert segs[-1].end_ms <= 2400


@pytest.fixture(scope="module")
def material() -> Any:
    from shiren.eval.readdigits_material import load_clip
    from shiren.models.mediapipe_face import MediapipeMeshTracker
    from shiren.models.registry import get_entry

    clips = [load_clip(grid(n)) for n in ("P10_pwij3p.mpg", "P14_lwbsza.mpg")]
    tracker = MediapipeMeshTracker(get_entry("face-mesh-attention"))
    meshes: dict[int, Any] = {}
    for c in clips:
        meshes.update(zip(map(id, c.frames), tracker.track(list(c.frames)), strict=True))
    return clips, meshes


def _sync(session: Any, meshes: dict[int, Any]) -> Any:
    cap = session.capture
    sig = face_signals([meshes[id(f)] for f in cap.frames], list(cap.times_ms), (360, 288))
    return check_sync(sig.mar, sig.t_ms, envelope(cap.audio), 0.0)


def test_sync_genuine_against_shifted_and_dubbed(material: Any) -> None:
    from shiren.eval.readdigits_material import attack, genuine

    (clip, other), meshes = material
    rng = random.Random(5)
    for seed in (1, 2):
        ch = draw_read_digits(lang="en", seed=seed, now=0.0)
        g, order = genuine(clip, ch, rng, AVLimits(sample_ms=80.0))
        real = _sync(g, meshes)
        assert real.corr >= 0.6
        assert abs(real.best_lag_ms) <= 120
        assert real.passed
        shifted = attack("shifted", clip, order, other, ch, rng, AVLimits(sample_ms=80.0))
        dubbed = attack("dubbed", clip, order, other, ch, rng, AVLimits(sample_ms=80.0))
        frozen = attack("frozen", clip, order, other, ch, rng, AVLimits(sample_ms=80.0))
        assert shifted is not None
        assert dubbed is not None
        assert frozen is not None
        s, d, f = (_sync(x, meshes) for x in (shifted, dubbed, frozen))
        assert not s.passed
        assert s.peak_gap > 0.1
        assert d.corr < real.corr
        assert not f.passed
        assert f.mouth_range < 0.02


def test_onsets_follow_the_schedule(material: Any) -> None:
    from shiren.eval.readdigits_material import genuine

    (clip, _), _ = material
    ch = draw_read_digits(lang="en", seed=11, now=0.0)
    g, _ = genuine(clip, ch, random.Random(3), AVLimits(sample_ms=80.0))
    segs = speech_segments(envelope(g.capture.audio))
    outcome = check_onsets(ch, segs)
    assert outcome.early == 0
    assert outcome.matched >= len(ch.steps) - 1
    # the same speech against another schedule answers at the wrong moments
    other = draw_read_digits(lang="en", seed=12, now=0.0)
    assert check_onsets(other, segs).matched < len(other.steps) or other.steps == ch.steps
    zh = ReadDigitsChallenge(**{**_fields(ch), "lang": "zh-CN"})
    assert check_onsets(zh, segs).matched <= outcome.matched


def _fields(ch: ReadDigitsChallenge) -> dict[str, Any]:
    return {k: getattr(ch, k) for k in ch.__dataclass_fields__}


# -- the CLI and the evaluation -----------------------------------------------------------------


def test_cli_draws_and_checks_a_read_digits_recording(material: Any, tmp_path: Path) -> None:
    from shiren.cli.main import app
    from shiren.eval.readdigits_material import genuine

    runner = CliRunner()
    drawn = runner.invoke(app, ["liveness", "challenge", "--type", "read_digits", "--json"])
    assert drawn.exit_code == 0, drawn.output
    assert json.loads(drawn.output)["type"] == "read_digits"

    (clip, _), _ = material
    ch = draw_read_digits(lang="en", seed=11, now=0.0)
    (tmp_path / "ch.json").write_text(ch.to_json(), "utf-8")
    g, order = genuine(clip, ch, random.Random(3), AVLimits(sample_ms=40.0))
    frames = [clip.frames[i] for i in order]
    (tmp_path / "rec.webm").write_bytes(encode(frames, g.capture.audio))
    args = ["liveness", "check", "--frames", str(tmp_path / "rec.webm")]
    args += ["--challenge", str(tmp_path / "ch.json"), "--now", "1", "--json"]
    checked = runner.invoke(app, args)
    assert checked.exit_code in (0, 1), checked.output
    out = json.loads(checked.output)
    assert out["variant"] == "read_digits"
    assert set(out["signals"]) >= {"onsets", "sync", "identity", "passive"}
    assert out["signals"]["sync"]["passed"], out["signals"]["sync"]
    (tmp_path / "mute.webm").write_bytes(encode(frames, np.zeros_like(g.capture.audio)))
    args[3] = str(tmp_path / "mute.webm")
    muted = runner.invoke(app, args)
    assert json.loads(muted.output)["code"] == "input.audio_silent"


def test_eval_on_a_small_slice() -> None:
    from shiren.eval.readdigits_eval import CachedTracker, build_rows, judge, summarise
    from shiren.eval.readdigits_material import load_clip
    from shiren.liveness.check import LivenessChecker
    from shiren.liveness.readdigits_check import ReadDigitsChecker

    names = ("P08_bbaf2n.mpg", "P09_brbk7n.mpg", "P12_lbbc2a.mpg", "P13_lrwp9a.mpg")
    clips = [load_clip(grid(n)) for n in names]
    live = LivenessChecker.from_config(pad_model=None)
    cached = CachedTracker(live.tracker)
    live.tracker = cached
    rows, notes = build_rows(clips, ReadDigitsChecker(live), 1, 0)
    sync = ReadDigitsChecker(live).config.sync
    judge(rows, 0.25, sync.min_mouth_range, sync.min_digit_share)
    summary = summarise(rows, 0.05)
    assert summary["genuine"]["bpcer"]["n"] == 4
    for kind in ("frozen", "silent", "shifted"):
        assert summary[kind]["apcer"]["k"] == 0, summary[kind]
    assert summary["silent"]["failed_signals"] == {"input.audio_silent": 4}
    assert ("synth" in summary) != bool(notes)
