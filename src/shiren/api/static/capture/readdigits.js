// Read the digits aloud (issue 18): the camera and the microphone record together while the
// server's digits appear one by one on its signed schedule; the recording (with sound) goes to
// the same upload as the record-and-upload fallback.  Offered only where the level allows it;
// without a microphone the borrower is told so and keeps the other ways.
import { ApiError } from "./api.js";

const $ = (sel) => document.querySelector(sel);
const TYPES = ["video/webm;codecs=vp8,opus", "video/webm", "video/mp4"];

export function createReadDigitsStep({ token, t, show, state, getReceipt, onResult, onError }) {
  const base = `/v1/capture/${encodeURIComponent(token)}`;
  let stream = null;

  async function post(path, body) {
    const res = await fetch(`${base}${path}?lang=${encodeURIComponent(state.lang)}`, {
      method: "POST",
      body,
      headers: getReceipt() ? { "X-Shiren-Consent": getReceipt() } : {},
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
    let data = null;
    try {
      data = await res.json();
    } catch {
      data = null;
    }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  // Switch this link's session to a read-the-digits one and open its page (the receipt carries).
  async function open() {
    try {
      const next = await post("/read-digits/open");
      sessionStorage.setItem(`shiren.receipt.${next.capture_token}`, next.receipt);
      location.assign(`${next.capture_path}?lang=${state.lang}`);
    } catch (err) {
      onError(err);
    }
  }

  async function start() {
    show("digits");
    $("#digits-error").hidden = true;
    $("#digits-big").textContent = "";
    $("#digits-prompt").textContent = t("digits_intro");
    const go = $("#digits-start");
    go.disabled = true;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: true },
        // 640x480 at 25 fps: the server uses at most 640 px and a frame every 40 ms, and decoding
        // a 1280x720 recording costs about 2.3x a 640x512 one (scripts/bench_readdigits.py)
        video: { facingMode: { ideal: "user" }, width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 25 } },
      });
    } catch (err) {
      $("#digits-error").textContent = err?.name === "NotAllowedError" ? t("digits_mic_denied") : t("digits_mic_missing");
      $("#digits-error").hidden = false;
      return;
    }
    const video = $("#digits-preview");
    video.srcObject = stream;
    await video.play().catch(() => {});
    go.disabled = false;
    go.onclick = () => record();
  }

  async function record() {
    const schedule = state.info.challenge.digits;
    const mime = TYPES.find((m) => window.MediaRecorder && MediaRecorder.isTypeSupported(m)) || "";
    const options = { videoBitsPerSecond: 1000000, audioBitsPerSecond: 64000 };
    const recorder = new MediaRecorder(stream, mime ? { ...options, mimeType: mime } : options);
    const chunks = [];
    recorder.ondataavailable = (e) => e.data.size && chunks.push(e.data);
    $("#digits-start").hidden = true;
    // the lead-in before the first digit is the room's own sound: the check measures the room
    // there (its noise, people talking) and takes speech there for an early answer
    let prompt = "digits_wait";
    $("#digits-prompt").textContent = t(prompt);
    const stopped = new Promise((done) => (recorder.onstop = done));
    const started = new Promise((done) => (recorder.onstart = done));
    recorder.start(250);
    await started;
    const t0 = performance.now();
    await new Promise((done) => {
      const tick = () => {
        const tm = performance.now() - t0;
        const step = [...schedule.steps].reverse().find((s) => s.show_ms <= tm);
        $("#digits-big").textContent = step ? String(step.digit) : "";
        if (step && prompt !== "digits_read") {
          prompt = "digits_read";
          $("#digits-prompt").textContent = t(prompt);
        }
        if (tm >= schedule.duration_ms) done();
        else requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
    recorder.stop();
    await stopped;
    stream.getTracks().forEach((track) => track.stop());
    $("#digits-big").textContent = "";
    $("#digits-prompt").textContent = t("rec_uploading");
    const form = new FormData();
    form.append("nonce", state.info.nonce);
    form.append("lang", state.lang);
    form.append("video", new Blob(chunks, { type: recorder.mimeType || "video/webm" }), "digits.webm");
    try {
      onResult(await post("/recording", form));
    } catch (err) {
      onError(err);
    }
  }

  return { open, start };
}
