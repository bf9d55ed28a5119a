"""The read-the-digits check's cheaper, sturdier pieces (issue 18): the voiced-band envelope, the
per-window onsets, the mouth's motion between sparse meshes, the decoder's brightness planes and
the minimax line of the evaluation."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from shiren.core.geometry import FloatArray
from shiren.eval.readdigits_eval import Row, _lines
from shiren.liveness.audio import (
    AUDIO_RATE,
    AVCapture,
    AVLimits,
    band_envelope,
    decode_av,
    envelope,
    grey_of,
    speech_floor,
    speech_segments,
)
from shiren.liveness.readdigits import ReadDigitsChallenge, Schedule, draw_read_digits
from shiren.liveness.readdigits_signals import check_onsets, mouth_motion, window_onsets
from tests.conftest import SHARED, require


def _tone(hz: float, ms: float, amp: float) -> npt.NDArray[np.float32]:
    t = np.arange(int(AUDIO_RATE * ms / 1000)) / AUDIO_RATE
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _answered(ch: ReadDigitsChallenge, rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """Faint hiss and a 250-ms answer 450 ms after each digit appears."""
    audio = (rng.standard_normal(int(AUDIO_RATE * ch.duration_ms / 1000)) * 1e-4).astype(np.float32)
    for step in ch.steps:
        at = int(AUDIO_RATE * (step.show_ms + 450) / 1000)
        burst = _tone(500.0, 250, 0.3)
        audio[at : at + burst.size] += burst
    return audio


def _talking(
    audio: npt.NDArray[np.float32], end: int, amp: float, rng: np.random.Generator
) -> None:
    """Other voices: a 200-ms "syllable" every 300 ms from the start to sample ``end``."""
    for at in range(0, end - 3200, 4800):
        audio[at : at + 3200] += _tone(float(rng.uniform(300, 900)), 200, amp)


def test_band_envelope_keeps_voice_and_drops_hiss() -> None:
    voice = band_envelope(_tone(500.0, 500, 0.1))
    hiss = band_envelope(_tone(6000.0, 500, 0.1))
    assert float(np.median(voice.db)) - float(np.median(hiss.db)) >= 20.0
    # the hops and times are the full band's; ``zcr`` is the centroid's equivalent (2f / rate)
    plain = envelope(_tone(500.0, 500, 0.1))
    assert np.array_equal(voice.t_ms, plain.t_ms)
    assert float(np.median(voice.zcr)) == pytest.approx(2 * 500 / AUDIO_RATE, rel=0.01)
    assert float(np.median(hiss.zcr)) == pytest.approx(2 * 6000 / AUDIO_RATE, rel=0.01)


def test_a_noisy_room_neither_unvoices_a_vowel_nor_buries_a_soft_one() -> None:
    """White noise 20 dB under a "vowel" (a 120-Hz voice, 29 harmonics falling as 1/k): the
    counted zero crossings nearly triple (each crossing chatters), the centroid's equivalent
    moves by ~15 %; and a burst 10 dB over the noise stands well over the floor once the
    band's steady noise is subtracted."""
    rng = np.random.default_rng(0)
    n = AUDIO_RATE * 2
    t = np.arange(n) / AUDIO_RATE
    vowel = sum(np.sin(2 * np.pi * 120 * k * t + k) / k for k in range(1, 30))
    vowel = (0.07 * vowel / np.sqrt(np.mean(vowel**2))).astype(np.float32)
    noise = rng.normal(0.0, 0.007, n).astype(np.float32)
    noisy = vowel + noise
    counted = float(np.median(envelope(noisy).zcr)) / float(np.median(envelope(vowel).zcr))
    centroid = float(np.median(band_envelope(noisy).zcr)) / float(
        np.median(band_envelope(vowel).zcr)
    )
    assert counted > 2.5
    assert centroid < 1.25
    soft = noise.copy()
    soft[16000:20000] += _tone(400.0, 250, float(0.007 * np.sqrt(2) * np.sqrt(10)))
    env = band_envelope(soft)
    floor = float(np.percentile(env.db, 10))
    burst = env.db[(env.t_ms > 1020) & (env.t_ms < 1230)]
    assert float(np.median(burst)) - floor >= 18.0  # 15.7 without the subtraction


def test_a_soft_digit_counts_in_its_own_window() -> None:
    ch = draw_read_digits(lang="en", seed=3, now=0.0, schedule=Schedule(digits=(4, 4)))
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(int(AUDIO_RATE * ch.duration_ms / 1000)) * 1e-4).astype(np.float32)
    amps = (0.3, 0.3, 0.003, 0.3)  # the third answer 40 dB softer than the others
    for step, amp in zip(ch.steps, amps, strict=True):
        at = int(AUDIO_RATE * (step.show_ms + 450) / 1000)
        burst = _tone(500.0, 250, amp)  # a vowel-like tone in the voiced band
        audio[at : at + burst.size] += burst
    env = band_envelope(audio)
    segs = speech_segments(env)
    assert len(segs) == 3  # the recording-wide threshold misses the soft answer
    assert check_onsets(ch, segs).counts == (1, 1, 0, 1)
    outcome = check_onsets(ch, segs, env)
    assert outcome.counts == (1, 1, 1, 1)
    assert outcome.passed
    third = ch.steps[2]
    found = window_onsets(env, third.window_start_ms, third.window_end_ms)
    assert len(found) == 1
    assert abs(found[0] - (third.show_ms + 450)) <= 30


@pytest.mark.parametrize(("early_amp", "early"), [(0.02, 0), (0.15, 1)])
def test_a_voice_behind_the_borrower_is_not_an_early_answer(early_amp: float, early: int) -> None:
    """Speech before the first digit: the room's (a word 24 dB under the answers) is not an
    early answer; one nearly as loud as the answers (6 dB under) is."""
    ch = draw_read_digits(lang="en", seed=3, now=0.0, schedule=Schedule(digits=(4, 4)))
    audio = _answered(ch, np.random.default_rng(0))
    before = int(AUDIO_RATE * 0.2)
    audio[before : before + 4000] += _tone(450.0, 250, early_amp)
    env = band_envelope(audio)
    segs = speech_segments(env)
    assert any(s.start_ms < ch.steps[0].window_start_ms for s in segs)  # heard, either way
    outcome = check_onsets(ch, segs, env)
    assert outcome.early == early
    assert outcome.passed is (early == 0)
    assert check_onsets(ch, segs).early == 1  # without the envelope: any speech is early


@pytest.mark.parametrize(("lead_in_amp", "early"), [(0.03, 0), (0.3, 1)])
def test_a_lead_in_spoken_through_is_speech_not_the_room(lead_in_amp: float, early: int) -> None:
    """``room_level``: people talking through the lead-in 20 dB under the answers are the room
    (no early answer); a voice as loud as the answers talking through it — a borrower answering
    before the screen, a track that ignores it — is not taken for the room (the room is held
    ``EARLY_RANGE_DB`` under the answers' level): it is still an early answer."""
    from shiren.liveness.readdigits_check import ReadDigitsConfig
    from shiren.liveness.readdigits_signals import EARLY_RANGE_DB, room_level

    ch = draw_read_digits(lang="en", seed=3, now=0.0, schedule=Schedule(digits=(4, 4)))
    rng = np.random.default_rng(5)
    audio = _answered(ch, rng)
    _talking(audio, int(AUDIO_RATE * ch.steps[0].show_ms / 1000), lead_in_amp, rng)
    env = band_envelope(audio)
    room = room_level(ch, env)
    assert room <= env.room_db(float(ch.steps[0].show_ms))
    peaks = [float(env.db[(env.t_ms >= s.window_start_ms) & (env.t_ms < s.window_end_ms)].max())
             for s in ch.steps]  # fmt: skip
    assert room <= float(np.median(peaks)) - EARLY_RANGE_DB + 1e-9
    segs = speech_segments(env, ReadDigitsConfig().speech, room)
    outcome = check_onsets(ch, segs, env, 0.0, ReadDigitsConfig().speech)
    assert outcome.early == early


def _mesh(x0: float, x1: float, y0: float, y1: float) -> FloatArray:
    mesh = np.zeros((478, 3), dtype=np.float32)
    mesh[61, :2], mesh[291, :2] = (x0, (y0 + y1) / 2), (x1, (y0 + y1) / 2)
    mesh[0, :2], mesh[17, :2] = ((x0 + x1) / 2, y0), ((x0 + x1) / 2, y1)
    return mesh


def test_mouth_motion_is_measured_inside_the_nearest_mesh_box() -> None:
    n = 50
    times = np.arange(n, dtype=np.float64) * 40.0
    frames = [np.full((100, 120), 100, np.uint8) for _ in range(n)]
    for i in range(n):
        frames[i][5:15, 5:15] = 100 + 50 * (i % 2)  # flicker away from the mouth: ignored
        if 20 <= i < 30:  # "speaking": the mouth's inside darkens and brightens
            frames[i][62:75, 50:70] = 40 if i % 2 else 120
    # the mesh ran on every 10th frame of a picture twice as large
    meshes: list[FloatArray | None] = [
        _mesh(90, 150, 120, 140) if i % 10 == 0 else None for i in range(n)
    ]
    motion = mouth_motion(frames, times, meshes, times, (240, 200))
    assert np.all(np.isfinite(motion))
    assert float(motion[21:30].min()) > 0.1
    assert float(np.abs(motion[:19]).max()) == 0.0
    assert float(np.abs(motion[31:]).max()) == 0.0
    still = mouth_motion([frames[0]] * n, times, meshes, times, (240, 200))
    assert float(np.nanmax(still)) == 0.0
    assert np.all(np.isnan(mouth_motion(frames, times, [None] * n, times, (240, 200))))


def test_the_box_follows_a_moving_face_between_meshes_when_interpolated() -> None:
    """A face drifting right: meshes at 0 and 800 ms only; at 400 ms the mouth (flickering)
    sits halfway.  The nearest mesh's box (off by half the drift) misses it; the box
    interpolated between the two meshes finds it."""
    times = np.arange(21, dtype=np.float64) * 40.0
    frames = []
    for i in range(21):
        image = np.full((100, 120), 100, np.uint8)
        x = 10 + 4 * i  # 40 px of drift over 800 ms
        image[45:55, x : x + 12] = 40 if i % 2 else 160
        frames.append(image)
    meshes: list[FloatArray | None] = [None] * 21
    meshes[0], meshes[20] = _mesh(10, 22, 44, 52), _mesh(90, 102, 44, 52)
    near = mouth_motion(frames, times, meshes, times, (120, 100))
    moving = mouth_motion(frames, times, meshes, times, (120, 100), interpolate=True)
    assert float(near[10]) == 0.0
    assert float(moving[10]) > 0.3


def test_decoding_keeps_the_brightness_between_sparse_frames() -> None:
    from shiren.eval.readdigits_material import load_clip
    from tests.test_readdigits import encode

    clip = load_clip(require(SHARED / "grid_talking_faces" / "P10_pwij3p.mpg"))
    data = encode(list(clip.frames), clip.audio)
    got = decode_av(data, AVLimits(sample_ms=400.0, luma_ms=40.0))
    assert 7 <= len(got.frames) <= 9
    assert 70 <= len(got.luma) <= 76
    assert got.luma_times_ms.size == len(got.luma)
    assert np.all(np.diff(got.luma_times_ms) > 0)
    assert got.luma[0].shape == got.frames[0].shape[:2]
    # the Y plane is the frame's brightness (in video range, 16-235: a scale, not a new signal)
    r = np.corrcoef(got.luma[0].ravel(), grey_of(got.frames[0]).ravel())[0, 1]
    assert r > 0.99
    assert decode_av(data, AVLimits(sample_ms=400.0)).luma == ()


@pytest.mark.parametrize(("fps", "step_ms"), [(25, 40.0), (30, 33.3), (60, 33.3)])
def test_a_phone_at_30_fps_keeps_every_frame_for_the_mouth(fps: int, step_ms: float) -> None:
    """Brightness every 40 ms "or the camera's next frame": a 30-fps phone's frames (33 ms
    apart) all count — with the 0.9 × 40 ms rule every other one did, a 15-Hz mouth signal —
    and a 60-fps one keeps every other frame."""
    from tests.test_readdigits import encode

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (96, 128, 3), dtype=np.uint8) for _ in range(fps * 4)]
    audio = (0.1 * rng.standard_normal(64000)).astype(np.float32)
    got = decode_av(encode(frames, audio, fps=fps), AVLimits(sample_ms=400.0, luma_ms=40.0))
    steps = np.diff(got.luma_times_ms)
    assert float(np.median(steps)) == pytest.approx(step_ms, abs=0.5)
    assert float(steps.max()) < 45.0


def _row(kind: str, corr: float, fold: int = 1) -> Row:
    row = Row(kind, "c", "P", fold, "")
    row.signals["sync"] = {
        "corr": corr,
        "peak_gap": 0.0,
        "mouth_range": 0.05,
        "digit_share": 1.0,
    }
    return row


def test_one_badly_synchronised_speaker_does_not_drag_the_line_down() -> None:
    genuine = [_row("genuine", c) for c in (0.78, 0.8, 0.82, 0.85, 0.7, 0.75, 0.9, 0.05)]
    dubbed = [_row("dubbed", c) for c in (0.2, 0.3, 0.4, 0.5, 0.45, 0.35, 0.25, 0.1)]
    lines = _lines(genuine + dubbed, 0.25, 0.005, 0.75)
    assert 0.5 < lines["min_corr"] <= 0.7
    assert lines["train_error"] == 0.125  # the one bad speaker


def test_the_lead_in_is_sampled_densely_and_the_evaluation_samples_as_the_decoder() -> None:
    """RGB frames every 800 ms, 400 ms in the 1-s lead-in (the passive model judges the still
    lead-in's frames: two of them, not one); the evaluation's sessions keep the same frames as
    decoding an upload does."""
    from shiren.eval.readdigits_material import _capture, load_clip
    from shiren.liveness.readdigits_check import ReadDigitsConfig
    from tests.test_readdigits import encode

    limits = ReadDigitsConfig().limits
    clip = load_clip(require(SHARED / "grid_talking_faces" / "P10_pwij3p.mpg"))
    frames, audio = list(clip.frames) * 3, np.tile(clip.audio, 3)  # 9 s, as a session lasts
    decoded = decode_av(encode(frames, audio), limits)
    times = decoded.times_ms
    # a frame at or after 0.9 x the step (a camera's uneven clock): 360 / 720 ms at 25 fps
    assert list(times[times < 1000.0]) == [0.0, 360.0, 720.0]
    later = np.diff(times[times >= 1000.0])
    assert float(later.min()) >= 720.0
    assert float(later.max()) <= 760.0
    built = _capture(frames, audio, limits)
    np.testing.assert_array_equal(built.times_ms, times)


def test_shipped_lines_judge_every_session_alike() -> None:
    """``--shipped-lines``: the deployed min_corr, not a line fitted on the other fold."""
    from shiren.eval.readdigits_eval import judge

    rows = [_row("genuine", c, fold) for fold in (0, 1) for c in (0.58, 0.6, 0.8)]
    rows += [_row("dubbed", c, fold) for fold in (0, 1) for c in (0.1, 0.5, 0.61)]
    for r in rows:
        for name in ("onsets", "identity", "passive"):
            r.signals[name] = {"passed": True}
    lines = judge(rows, 0.25, 0.005, 0.75, fixed={"min_corr": 0.59, "max_peak_gap": 0.02})
    assert lines == {k: {"min_corr": 0.59, "max_peak_gap": 0.02} for k in ("0", "1")}
    passed = {(r.kind, r.signals["sync"]["corr"]) for r in rows if r.signals["decision"]["passed"]}
    assert passed == {("genuine", 0.6), ("genuine", 0.8), ("dubbed", 0.61)}


def test_noise_is_added_under_the_speech_at_the_asked_level() -> None:
    """``--snr-db``: white noise this many dB under the genuine speech's RMS (its loud hops)."""
    from shiren.eval.readdigits_material import Session, speech_rms, with_noise

    rng = np.random.default_rng(0)
    t = np.arange(32000) / 16000.0
    tone = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    tone[:8000] = 0.0  # a silent start does not dilute the speech's level
    assert speech_rms(tone) == pytest.approx(0.2 / np.sqrt(2), rel=0.02)
    capture = AVCapture(frames=(), times_ms=np.zeros(0), audio=tone)
    noisy = with_noise(Session("genuine", "c", "P", capture), 0.01, rng).capture.audio
    assert float(np.std(noisy[:8000])) == pytest.approx(0.01, rel=0.05)
    assert capture.audio is tone  # the session itself is unchanged


def test_the_noise_estimate_follows_the_room() -> None:
    """``Envelope.snr_db``: a real clip's loud hops over the steady noise the band envelope
    subtracts — a studio recording far over any room, and with white noise added at a falling
    speech-to-noise ratio, an estimate that falls with it (≈ 6 dB over it: the loud hops, not
    the speech's mean)."""
    from shiren.eval.readdigits_material import speech_rms

    clip = decode_av(
        require(SHARED / "grid_talking_faces" / "P10_pwij3p.mpg").read_bytes(),
        AVLimits(sample_ms=200.0),
    )
    studio = band_envelope(clip.audio).snr_db()
    assert studio > 45.0
    rng = np.random.default_rng(1)
    rms = speech_rms(clip.audio)
    found = []
    for snr in (40.0, 25.0, 10.0):
        noisy = clip.audio + rng.normal(0.0, rms * 10 ** (-snr / 20), clip.audio.shape)
        est = band_envelope(noisy.astype(np.float32)).snr_db()
        assert snr <= est <= snr + 12.0
        found.append(est)
    assert found == sorted(found, reverse=True)
    assert np.isnan(envelope(clip.audio).snr_db())  # the plain envelope has no noise estimate


def test_the_lead_in_hears_a_room_whose_noise_is_not_steady() -> None:
    """People talking behind the borrower: bursts with pauses between them, so the quietest
    fifth of hops (the steady-noise estimate) is near silence; the lead-in's median level hears
    them.  A word said early, over a fifth of the lead-in, does not count as the room."""
    rng = np.random.default_rng(2)
    n = AUDIO_RATE * 6
    audio = rng.normal(0.0, 1e-4, n).astype(np.float32)
    _talking(audio, n, 0.03, rng)  # 20 dB under
    for at in (1.5, 3.0, 4.5):  # the answers
        i = int(at * AUDIO_RATE)
        audio[i : i + 4000] += _tone(500.0, 250, 0.3)
    env = band_envelope(audio)
    steady, heard = env.snr_db(), env.snr_db(quiet_until_ms=1000.0)
    assert steady > 45.0  # the bursts' pauses read as a silent room
    assert 15.0 <= heard <= 28.0  # ~20 dB under the answers, as the lead-in hears them
    early = audio.copy()
    early[3200:6400] += _tone(500.0, 200, 0.3)  # one word, 200 ms of the 1-s lead-in
    assert band_envelope(early).snr_db(quiet_until_ms=1000.0) == pytest.approx(heard, abs=3.0)


def _room_with_people_talking(seed: int) -> tuple[npt.NDArray[np.float32], list[float]]:
    """6 s: 200-ms "syllables" of other voices every 300 ms, 20 dB under three answers."""
    rng = np.random.default_rng(seed)
    n = AUDIO_RATE * 6
    audio = rng.normal(0.0, 1e-4, n).astype(np.float32)
    _talking(audio, n, 0.03, rng)  # 20 dB under
    answers = [1.5, 3.0, 4.5]
    for at in answers:
        i = int(at * AUDIO_RATE)
        audio[i : i + 4000] += _tone(500.0, 250, 0.3)
    return audio, answers


def test_the_room_level_is_the_lead_ins_and_speech_is_measured_from_it() -> None:
    """``Envelope.room_db``: the median level of the silent lead-in — the other voices there,
    not the silence between their syllables (the floor, the quietest hops).  Measured from it,
    the speech is the answers alone: the other voices are neither speech nor a rise of the
    level the mouth is correlated with.  Measured from the floor, they are both, and a mouth
    that moves with the answers correlates with the level at all but no lag."""
    from shiren.liveness.readdigits_check import ReadDigitsConfig
    from shiren.liveness.readdigits_signals import SyncParams, check_sync, speech_level

    audio, answers = _room_with_people_talking(4)
    env = band_envelope(audio)
    floor = float(np.percentile(env.db, 10))
    room = env.room_db(1000.0)
    assert room > floor + 20.0  # the voices, far over the silence between them
    assert np.isnan(env.room_db(100.0))  # too short a stretch to tell the room by
    assert speech_floor(env) == floor
    assert speech_floor(env, room) == room
    assert speech_floor(env, floor - 5.0) == floor  # a room quieter than the floor: the floor
    speech = ReadDigitsConfig().speech
    heard = speech_segments(env, speech, room)
    assert [round(s.start_ms / 1000.0, 1) for s in heard] == answers
    # from the floor, the other voices are one run of speech from the start: an early answer
    assert [s.start_ms for s in speech_segments(env, speech)] == [0.0]
    level = speech_level(env, 40.0, room)
    between = (env.t_ms > 2000.0) & (env.t_ms < 2900.0)  # other voices only
    assert float(level[between].max()) < 6.0
    t = np.arange(0.0, 6000.0, 40.0)
    mouth = np.zeros(t.size)
    for at in answers:
        mouth[(t >= at * 1000.0) & (t < at * 1000.0 + 250.0)] = 0.05
    params = SyncParams()
    assert check_sync(mouth, t, env, 0.0, params, room_db=room).corr >= 0.8
    assert check_sync(mouth, t, env, 0.0, params).corr < 0.3


def test_a_speech_failure_in_a_noisy_room_is_read_as_too_noisy() -> None:
    from shiren.liveness.readdigits_check import ReadDigitsConfig, too_noisy
    from shiren.liveness.result import SignalResult
    from shiren.reasons import ReasonCode

    line = ReadDigitsConfig().min_snr_db
    desync = SignalResult("sync", True, False, 0.2, 0.3, 0.59, (ReasonCode.LIVENESS_AV_DESYNC,))
    assert too_noisy(desync, line - 1.0, line).reasons == (ReasonCode.LIVENESS_TOO_NOISY,)
    assert too_noisy(desync, line + 1.0, line) is desync  # a quiet room: the failure stands
    assert too_noisy(desync, float("nan"), line) is desync  # no estimate: not noisy
    lost = SignalResult("sync", True, False, 0.0, 0.0, 0.59, (ReasonCode.LIVENESS_FACE_LOST,))
    assert too_noisy(lost, line - 20.0, line).reasons == (ReasonCode.LIVENESS_FACE_LOST,)
    passed = SignalResult("onsets", True, True, 0.9, 1.0, 1.0)
    assert too_noisy(passed, 0.0, line) is passed  # a pass in a noisy room is a pass


def test_babble_is_other_people_talking_at_unit_level() -> None:
    """``--noise babble``: four other people's clips, never the session's own person, summed to
    unit RMS; with it, ``with_noise`` adds the asked level of that room, not white noise."""
    from shiren.eval.readdigits_material import Clip, Session, babble, with_noise

    rng = np.random.default_rng(3)

    def clip(person: str, hz: float) -> Clip:
        t = np.arange(16000) / 16000.0
        audio = (np.sin(2 * np.pi * hz * t) * (t < 0.5)).astype(np.float32)
        return Clip(person, person, (), audio, (), ())

    clips = [clip("P01", 200.0), *(clip(f"P{i:02d}", 300.0 + 100 * i) for i in range(2, 7))]
    room = babble(clips, "P01", 24000, rng)
    assert room.shape == (24000,)
    assert float(np.sqrt(np.mean(room**2))) == pytest.approx(1.0, rel=1e-3)
    spectrum = np.abs(np.fft.rfft(room))
    freqs = np.fft.rfftfreq(room.size, 1 / 16000)
    assert spectrum[np.argmin(np.abs(freqs - 200.0))] < 0.01 * spectrum.max()  # not P01's voice
    capture = AVCapture(frames=(), times_ms=np.zeros(0), audio=np.zeros(8000, np.float32))
    noisy = with_noise(Session("genuine", "c", "P01", capture), 0.05, rng, room).capture.audio
    np.testing.assert_allclose(noisy, np.clip(0.05 * room[:8000], -1, 1), atol=1e-6)


def test_noise_explains_a_weak_voice_at_the_right_lag_only() -> None:
    """A room too noisy to judge turns ``av_desync`` into ``too_noisy`` only where the failure
    looks like a genuine voice in noise: the mouth moves, the best lag is in the band, the
    correlation is weak but there.  A shifted or looped track (a peak elsewhere), a still mouth
    (a frozen picture, a synthesised voice) or no correlation stay a desync, a review."""
    from shiren.liveness.readdigits_check import ReadDigitsConfig, noise_explains
    from shiren.liveness.readdigits_signals import SyncOutcome
    from shiren.reasons import ReasonCode

    cfg = ReadDigitsConfig()
    p, line = cfg.sync, cfg.noisy_min_corr
    desync = ReasonCode.LIVENESS_AV_DESYNC

    def outcome(corr: float, best: float, mouth: float) -> SyncOutcome:
        return SyncOutcome(False, corr, 0.0, best, 0.0 if best == corr else 300.0, mouth, desync)

    def explains(o: SyncOutcome) -> bool:
        return noise_explains(o.corr, o.peak_gap, o.mouth_range, p, line)

    assert explains(outcome(0.45, 0.45, 0.05))  # weak, in the band
    assert not explains(outcome(0.45, 0.7, 0.05))  # the voice peaks elsewhere
    assert not explains(outcome(0.45, 0.45, 0.001))  # the mouth does not move
    assert not explains(outcome(line - 0.05, line - 0.05, 0.05))  # no voice in it
