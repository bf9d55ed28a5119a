// The capture page: consent → [the ID card, on a card capture's link] → camera → framing guidance → the server's challenge (prompts,
// colour flash, frames with t_ms on one clock) → upload (retry, no duplicates) → result.
import { UI, fmt, pluralKey } from "./i18n.js";
import { ApiError, createApi } from "./api.js";
import { cameraLabel, grabber, openCamera, stopCamera } from "./camera.js";
import { createCardStep } from "./card.js";
import { cameraTooPoor, detect, pathFor } from "./env.js";
import { createReadDigitsStep } from "./readdigits.js";
import { createRecordingStep } from "./recording.js";

const $ = (sel) => document.querySelector(sel);
const FRAME_WIDTH = 640;
const FRAME_INTERVAL_MS = 80; // ≈ 12.5 fps
const QUALITY_INTERVAL_MS = 700; // ≈ 1.4 guidance calls per second
const START_ANYWAY_MS = 6000;
// The light pre-check: while the server's gate names the light (too dark, backlit, direct sun)
// the challenge is not offered — its colour flash and actions would fail in that light — until
// LIGHT_ANYWAY_MS have passed (then the server decides: never a trap).
const LIGHT_CODES = new Set(["quality.too_dark", "quality.backlight", "quality.overexposed"]);
const LIGHT_ANYWAY_MS = 15000;

const token = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
const params = new URLSearchParams(location.search);
const state = {
  lang: params.get("lang") === "en" ? "en" : sessionStorage.getItem("shiren.lang") || "zh-CN",
  info: null,
  screen: "loading",
  stream: null,
  framing: null,
  result: null,
  failure: null,
};
const api = createApi(token, () => state.lang);
const t = (key, vars) => fmt(UI[state.lang][key] ?? key, vars);
const tn = (key, count, vars) => t(pluralKey(UI[state.lang], key, state.lang, count), vars);
const recordingStep = createRecordingStep({
  token,
  t,
  show: (name) => show(name),
  state,
  getReceipt: () => state.receipt,
  onResult: (r) => {
    state.result = r;
    renderResult();
    show("result");
  },
  onError: (err) => fatal(err),
});
const digitsStep = createReadDigitsStep({
  token,
  t,
  show: (name) => show(name),
  state,
  getReceipt: () => state.receipt,
  onResult: (r) => {
    state.result = r;
    renderResult();
    show("result");
  },
  onError: (err) => fatal(err),
});
const recordingAllowed = () => Boolean(state.info?.recording?.allowed);
const isRecorded = () => state.info?.challenge?.variant === "recorded";
const cardStep = createCardStep({ api, t, show: (name) => show(name), state, onFatal: (err) => fatal(err), onCameraError: (err) => cameraError(err) });

// -- rendering -------------------------------------------------------------------------------

function show(name) {
  state.screen = name;
  document.querySelectorAll(".screen").forEach((s) => (s.hidden = s.id !== `screen-${name}`));
  document.body.dataset.screen = name;
  const heading = document.querySelector(`#screen-${name} h1`);
  if (heading && name !== "capture") {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
}

function announce(text) {
  $("#status").textContent = text;
}

function renderStatic() {
  document.documentElement.lang = state.lang;
  document.title = t("brand");
  document.querySelectorAll("[data-i18n]").forEach((el) => (el.textContent = t(el.dataset.i18n)));
  const sw = $("#lang-switch");
  sw.textContent = t("switch_to");
  sw.lang = state.lang === "en" ? "zh-CN" : "en";
  sw.setAttribute("aria-label", state.lang === "en" ? "切换到中文" : "Switch to English");
  const info = state.info;
  if (info) {
    const texts = info.consent.texts[state.lang];
    document.querySelectorAll("[data-consent]").forEach((el) => {
      const text = texts[el.dataset.consent];
      el.hidden = text === undefined;
      el.textContent = text ?? "";
    });
    if (info.step === "id_card") $("#screen-camera .lead").textContent = t("card_camera_text");
    document.querySelectorAll("[data-i18n-tpl]").forEach((el) => (el.textContent = t(el.dataset.i18nTpl, { lender: info.lender })));
    document.querySelectorAll("[data-alternatives]").forEach((ul) => fillList(ul, info.alternatives.map((a) => a[state.lang])));
    const flashes = Boolean(info.challenge && info.challenge.colours.length);
    $("#flash-warning").hidden = !flashes;
    $("#flash-fallback").textContent = flashes ? t("flash_fallback") : t("use_other");
  }
  if (state.result || state.failure) renderResult();
}

function fillList(ul, items) {
  ul.replaceChildren(...items.map((text) => Object.assign(document.createElement("li"), { textContent: text })));
}

// -- steps -----------------------------------------------------------------------------------

async function load() {
  renderStatic();
  try {
    state.info = await api.info();
  } catch (err) {
    const code = err instanceof ApiError ? err.code : "network";
    $("#link-error-text").textContent =
      code === "capture.token_expired" ? t("result_expired_text") : err instanceof ApiError ? messageOf(err) : t("network_advice");
    renderStatic();
    show("link-error");
    return;
  }
  renderStatic();
  if (state.info.status === "open" && !sessionStorage.getItem("shiren.env.ok")) {
    const path = pathFor(detect());
    if (path) {
      showEnvironment(path, () => {
        sessionStorage.setItem("shiren.env.ok", "1");
        afterEnvironment();
      });
      return;
    }
  }
  await afterEnvironment();
}

async function afterEnvironment() {
  if (state.info.step === "id_card") {
    loadCardStep();
    return;
  }
  if (state.info.status !== "open") {
    await showFinalState();
    return;
  }
  // A next attempt opened from the result page: the borrower consented minutes ago.
  const carried = sessionStorage.getItem(`shiren.receipt.${token}`);
  if (carried) {
    api.setReceipt(carried);
    state.receipt = carried;
    await afterConsent();
    return;
  }
  show("consent");
}

// -- environments ----------------------------------------------------------------------------

// One explicit path per environment (env.js): instructions, the link to copy (and a QR code on
// a desktop), "continue here" where the camera may still work, and always the non-face routes.
function showEnvironment(path, onContinue, vars = {}) {
  state.env = { path, onContinue, vars }; // re-rendered on a language switch
  const env = detect();
  const v = env.ios ? `${env.ios.major}.${env.ios.minor}` : "";
  const app = t(`app_${env.inApp || "webview"}`);
  const texts = {
    in_app: [t("env_in_app_title"), env.ios && !env.iosSafari && env.ios.major * 100 + env.ios.minor < 1403 ? t("env_in_app_ios_text", { v }) : t("env_in_app_text", { app })],
    ios_too_old: [t("env_ios_old_title"), t("env_ios_old_text", { v })],
    no_camera_api: [t("env_no_camera_title"), t("env_no_camera_text")],
    desktop: [t("env_desktop_title"), t("env_desktop_text")],
    camera_poor: [t("camera_poor_title"), t("camera_poor_text", vars)],
  }[path.kind];
  $("#env-title").textContent = texts[0];
  $("#env-text").textContent = texts[1];
  const steps = path.kind === "in_app" && env.inApp && env.inApp !== "webview" ? [t("env_step_menu"), t("env_step_open"), t("env_step_copy")] : path.kind === "in_app" ? [t("env_step_copy")] : [];
  fillList($("#env-steps"), steps);
  const link = `${location.origin}${location.pathname}`;
  $("#env-link").value = link;
  $("#env-link-row").hidden = path.kind === "ios_too_old";
  $("#env-copied").textContent = "";
  const qr = path.kind === "desktop" || path.kind === "camera_poor";
  $("#env-qr").hidden = !qr;
  if (qr) $("#env-qr-img").src = `${location.pathname.replace(/\/$/, "")}/qr.svg`;
  const cont = $("#env-continue");
  cont.hidden = !path.canContinue;
  cont.textContent = path.kind === "desktop" ? t("env_desktop_continue") : path.kind === "camera_poor" ? t("camera_poor_continue") : t("env_continue");
  cont.onclick = () => onContinue();
  const rec = $("#env-record");
  rec.hidden = !recordingAllowed() || path.kind === "desktop";
  rec.onclick = () => {
    state.wantRecording = true;
    sessionStorage.setItem("shiren.env.ok", "1");
    afterEnvironment();
  };
  document.body.dataset.environment = path.kind;
  show("environment");
}

async function copyLink() {
  const input = $("#env-link");
  try {
    await navigator.clipboard.writeText(input.value);
    $("#env-copied").textContent = t("env_copied");
  } catch {
    input.select();
    const ok = document.execCommand && document.execCommand("copy");
    $("#env-copied").textContent = ok ? t("env_copied") : t("env_copy_failed");
  }
}

// A card capture's link: consent first; once the card enrolled, the link leads to the selfie.
function loadCardStep() {
  const info = state.info;
  if (info.status === "open") {
    show("consent");
    return;
  }
  if (info.next_capture_path) {
    location.assign(`${info.next_capture_path}?lang=${state.lang}`);
    return;
  }
  state.failure = { kind: info.status === "expired" ? "expired" : "used" };
  renderResult();
  show("result");
}

function fatal(err) {
  const network = !(err instanceof ApiError) || err.status >= 500;
  state.failure = network ? { kind: "network" } : { kind: "error", message: messageOf(err), code: err.code };
  renderResult();
  show("result");
}

async function retryNow() {
  $("#result-retry").disabled = true;
  try {
    const next = await api.retry();
    sessionStorage.setItem(`shiren.receipt.${next.capture_token}`, next.receipt);
    location.assign(`${next.capture_path}?lang=${state.lang}`);
  } catch (err) {
    $("#result-retry").disabled = false;
    $("#result-actions").hidden = true;
    $("#result-text").textContent = messageOf(err);
  }
}

async function showFinalState() {
  try {
    state.result = await api.result();
  } catch (err) {
    state.failure = { kind: "error", message: messageOf(err) };
  }
  if (!state.result?.decision && !state.failure) {
    state.failure = { kind: state.info.status === "expired" ? "expired" : "used" };
  }
  renderResult();
  show("result");
}

async function accept() {
  $("#consent-accept").disabled = true;
  try {
    state.receipt = (await api.consent(true)).receipt;
  } catch (err) {
    $("#consent-accept").disabled = false;
    announce(messageOf(err));
    return;
  }
  await afterConsent();
}

// The borrower consented (now, or minutes ago on an earlier attempt): the card, a recording
// (this link's session is a recorded one, or they asked for one), or the live camera.
async function afterConsent() {
  if (state.info.step === "id_card") await cardStep.start();
  else if (isRecorded()) recordingStep.start();
  else if (state.info.challenge?.variant === "read_digits") await digitsStep.start();
  else if (state.wantRecording) await recordingStep.open();
  else await startCamera();
}

async function decline() {
  api.consent(false).catch(() => {});
  goAlternatives();
}

function goAlternatives() {
  stopFraming();
  cardStep.stop();
  stopCamera(state.stream);
  state.stream = null;
  show("alternatives");
}

async function startCamera() {
  show("camera");
  $("#camera-error").hidden = true;
  $("#camera-retry").hidden = true;
  $("#camera-record").hidden = true;
  try {
    state.stream = await openCamera($("#preview"));
  } catch (err) {
    cameraError(err);
    return;
  }
  const poor = state.poorAccepted ? null : cameraTooPoor(state.stream);
  if (poor) {
    showEnvironment({ kind: "camera_poor", canContinue: true }, () => {
      state.poorAccepted = true;
      show("capture");
      startFraming();
    }, { w: poor.width, h: poor.height, fps: poor.fps });
    return;
  }
  show("capture");
  startFraming();
}

function cameraError(err) {
  const key = err?.name === "NotAllowedError" ? "camera_denied" : err?.name === "NotFoundError" ? "camera_missing" : "camera_failed";
  $("#camera-error").textContent = t(key);
  $("#camera-error").hidden = false;
  $("#camera-retry").hidden = false;
  $("#camera-record").hidden = !recordingAllowed() || state.info?.step === "id_card";
}

// Live guidance: a local brightness check on every tick, the server's quality gate ~1.4×/s.
function startFraming() {
  const video = $("#preview");
  const grab = grabber(video, 480);
  const f = { timer: 0, busy: false, lastQuality: 0, passed: false, light: false, started: performance.now(), tip: t("framing_start") };
  state.framing = f;
  $("#framing-controls").hidden = false;
  $("#digits-offer").hidden = !state.info?.recording?.read_digits;
  $("#progress").hidden = true;
  setPrompt(t("framing_start"));
  const start = $("#start");
  start.disabled = true;
  start.textContent = t("start");
  f.timer = setInterval(async () => {
    if (!video.videoWidth) return;
    const now = performance.now();
    grab.draw();
    const luma = grab.centreLuma();
    const local = luma < 40 ? t("local_dark") : luma > 235 ? t("local_bright") : null;
    if (!f.busy && now - f.lastQuality >= QUALITY_INTERVAL_MS) {
      f.busy = true;
      f.lastQuality = now;
      try {
        const q = await api.quality(await grab.jpeg(0.8));
        f.passed = f.passed || q.passed;
        const light = q.reasons.find((r) => LIGHT_CODES.has(r.code));
        f.light = Boolean(light) && !f.passed;
        f.tip = q.passed ? t("framing_ok") : light ? `${t("light_check")}${light.message}` : q.tip;
        document.body.dataset.light = f.light ? light.code : "";
        $("#oval-ring").classList.toggle("good", q.passed);
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 429)) f.tip = messageOf(err);
      } finally {
        f.busy = false;
      }
    }
    if (state.framing !== f) return;
    setPrompt(f.light ? f.tip : local || f.tip); // the server's light check is the more specific
    const late = now - f.started > (f.light ? LIGHT_ANYWAY_MS : START_ANYWAY_MS);
    if (f.passed || late) {
      start.disabled = false;
      start.textContent = f.passed ? t("start") : t("start_anyway");
    }
  }, 150);
}

function stopFraming() {
  if (state.framing) clearInterval(state.framing.timer);
  state.framing = null;
}

function setPrompt(text) {
  const el = $("#prompt");
  if (el.textContent !== text) el.textContent = text;
}

// The challenge: one clock (performance.now() − t0) drives the prompts, the colour flash and
// every frame's t_ms, so the server knows which colour was on screen for each frame.
async function runChallenge() {
  stopFraming();
  const ch = state.info.challenge;
  const video = $("#preview");
  const grab = grabber(video, FRAME_WIDTH);
  const frames = [];
  const flash = $("#flash");
  $("#framing-controls").hidden = true;
  $("#progress").hidden = false;
  fillList($("#steps"), ch.actions.map((a) => t(`action_${a.action}`)));
  const endMs = ch.duration_ms + 300;
  let interrupted = false;
  const onHidden = () => {
    if (document.hidden) interrupted = true;
  };
  document.addEventListener("visibilitychange", onHidden);
  const t0 = performance.now();
  const timer = setInterval(() => {
    const tm = performance.now() - t0;
    grab.draw();
    frames.push({ t: Math.round(tm * 10) / 10, blob: grab.jpeg(0.85) });
  }, FRAME_INTERVAL_MS);
  await new Promise((done) => {
    const tick = () => {
      const tm = performance.now() - t0;
      const colour = ch.colours.find((c) => c.start_ms <= tm && tm < c.end_ms);
      flash.hidden = !colour;
      if (colour) flash.style.backgroundColor = `rgb(${colour.rgb.join(",")})`;
      const idx = ch.actions.findIndex((a) => a.start_ms <= tm && tm < a.end_ms);
      updateProgress(ch, idx, tm);
      if (colour) setPrompt(t("flash_prompt"));
      else if (idx >= 0) setPrompt(t(`action_${ch.actions[idx].action}`));
      else setPrompt(t("hold_still"));
      if (tm >= endMs || interrupted) done();
      else requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  clearInterval(timer);
  document.removeEventListener("visibilitychange", onHidden);
  flash.hidden = true;
  if (interrupted) {
    // Leaving the page mid-challenge breaks its timeline: start again (the session is unused).
    startFraming();
    setPrompt(t("interrupted"));
    if (state.framing) state.framing.tip = t("interrupted");
    return;
  }
  setPrompt(t("done_capture"));
  const blobs = await Promise.all(frames.map((f) => f.blob));
  state.cameraLabel = cameraLabel(state.stream);
  stopCamera(state.stream);
  state.stream = null;
  await upload(frames.map((f, i) => ({ t: f.t, blob: blobs[i] })).filter((f) => f.blob));
}

function updateProgress(ch, idx, tm) {
  const total = ch.actions.length;
  const firstAction = total ? ch.actions[0].start_ms : Infinity;
  if (idx < 0 && tm < firstAction) {
    // Before the first action (the colour flash, the lead-in): no action is "current" yet.
    $("#step-label").textContent = t("flash_step");
    for (const item of $("#steps").children) {
      item.classList.remove("current", "done");
      item.removeAttribute("aria-current");
    }
    $("#progress .meter").setAttribute("aria-valuenow", "0");
    $("#meter-fill").style.width = "0%";
    return;
  }
  const items = $("#steps").children;
  for (let i = 0; i < items.length; i++) {
    const stepDone = tm >= ch.actions[i].end_ms;
    items[i].classList.toggle("done", stepDone);
    items[i].classList.toggle("current", i === idx);
    if (i === idx) items[i].setAttribute("aria-current", "step");
    else items[i].removeAttribute("aria-current");
  }
  const n = idx >= 0 ? idx + 1 : Math.min(total, ch.actions.filter((a) => tm >= a.end_ms).length);
  $("#step-label").textContent = t("step_of", { n: Math.max(1, n), total });
  const pct = idx >= 0 ? ((tm - ch.actions[idx].start_ms) / (ch.actions[idx].end_ms - ch.actions[idx].start_ms)) * 100 : n === total && tm >= ch.actions[total - 1].end_ms ? 100 : 0;
  const meter = $("#progress .meter");
  meter.setAttribute("aria-valuenow", String(Math.round(pct)));
  $("#meter-fill").style.width = `${Math.max(0, Math.min(100, pct))}%`;
}

async function upload(frames) {
  show("upload");
  const text = $("#upload-text");
  try {
    state.result = await api.submit(state.info.nonce, frames, state.cameraLabel, ({ attempt, waitingMs, polling }) => {
      if (polling) text.textContent = t("waiting_result");
      else if (waitingMs) text.textContent = t("upload_retry", { s: Math.ceil(waitingMs / 1000), n: attempt });
      else text.textContent = t("uploading", { n: attempt });
    });
  } catch (err) {
    const network = !(err instanceof ApiError) || err.status >= 500 || err.status === 429;
    state.failure = network ? { kind: "network" } : { kind: "error", message: messageOf(err), code: err.code };
  }
  renderResult();
  show("result");
}

// -- the result ------------------------------------------------------------------------------

function renderResult() {
  const r = state.result;
  const fail = state.failure;
  const icon = $("#result-icon");
  let title;
  let text;
  let advice = [];
  let fallbacks = [];
  if (fail) {
    icon.className = "result-icon bad";
    const kind = fail.code === "session.expired" ? "expired" : fail.kind;
    title = { network: t("result_network_title"), expired: t("result_expired_title"), used: t("result_used_title") }[kind] || t("result_retry_title");
    text = { network: t("result_network_text"), expired: t("result_expired_text"), used: "" }[kind] ?? fail.message;
    if (kind === "network") advice = [{ symptom: t("network_symptom"), advice: t("network_advice") }];
    fallbacks = (state.info?.alternatives || []).map((a) => a[state.lang]);
  } else if (r && r.decision) {
    const ok = r.decision === "pass";
    icon.className = `result-icon ${ok ? "good" : r.decision === "review" ? "wait" : "bad"}`;
    title = t(`result_${r.decision}_title`);
    text = t(`result_${r.decision}_text`);
    advice = r.advice || [];
    fallbacks = (r.fallbacks || []).map((f) => f.label);
  } else {
    return;
  }
  $("#result-title").textContent = title;
  $("#result-text").textContent = text || "";
  fillList($("#result-tips"), r && !fail ? r.tips || [] : []);
  const table = $("#result-advice");
  table.hidden = !advice.length;
  table.tBodies[0].replaceChildren(
    ...advice.map((a) => {
      const tr = document.createElement("tr");
      tr.append(Object.assign(document.createElement("td"), { textContent: a.symptom }), Object.assign(document.createElement("td"), { textContent: a.advice }));
      return tr;
    }),
  );
  // Attempts only beside a "try again": next to "sent for review" they would promise a retry.
  $("#result-attempts").textContent = r && !fail && r.decision === "retry" ? attemptsText(r) : "";
  $("#result-actions").hidden = !(r && !fail && r.can_retry);
  const fb = $("#result-fallbacks");
  const showFallbacks = fallbacks.length && (fail || r.decision === "fallback" || r.decision === "review" || (r.attempts && r.attempts.failed >= r.attempts.max));
  fb.hidden = !showFallbacks;
  fillList(fb.querySelector("ul"), fallbacks);
  announce(title);
}

function attemptsText(r) {
  if (!r.attempts) return "";
  const left = Math.max(0, r.attempts.max - r.attempts.failed);
  const sep = state.lang === "en" ? " " : "";
  const parts = [t("attempts", r.attempts), left ? tn("attempts_left", left, { left }) : t("attempts_none")];
  if (r.retry_after_s) {
    const m = Math.ceil(r.retry_after_s / 60);
    parts.push(tn("retry_after", m, { m }));
  }
  return parts.join(sep);
}

function messageOf(err) {
  const known = {
    "capture.token_invalid": { "zh-CN": "验证链接无效，请回到借款应用重新打开", en: "This verification link is not valid. Please open it again from the lending app." },
    "capture.retry_not_allowed": { "zh-CN": "无法从此链接再次尝试，请回到借款应用", en: "No further attempt can be started from this link. Please go back to the lending app." },
    "capture.token_expired": { "zh-CN": "验证链接已过期，请回到借款应用获取新链接", en: "This verification link has expired. Please get a new one from the lending app." },
  };
  if (err instanceof ApiError && known[err.code]) return known[err.code][state.lang];
  return t("error_generic");
}

// -- wiring ----------------------------------------------------------------------------------

$("#lang-switch").addEventListener("click", () => {
  state.lang = state.lang === "en" ? "zh-CN" : "en";
  sessionStorage.setItem("shiren.lang", state.lang);
  renderStatic();
  if (state.framing) state.framing.tip = t("framing_start");
  if (state.screen === "environment" && state.env) showEnvironment(state.env.path, state.env.onContinue, state.env.vars);
  if (state.screen === "recording") recordingStep.render();
});
$("#consent-accept").addEventListener("click", accept);
$("#env-copy").addEventListener("click", copyLink);
$("#consent-decline").addEventListener("click", decline);
$("#camera-retry").addEventListener("click", () => (state.info?.step === "id_card" ? cardStep.start() : startCamera()));
$("#result-retry").addEventListener("click", retryNow);
$("#camera-record").addEventListener("click", () => recordingStep.open());
$("#digits-offer").addEventListener("click", () => {
  stopFraming();
  stopCamera(state.stream);
  state.stream = null;
  digitsStep.open();
});
$("#start").addEventListener("click", () => {
  $("#start").disabled = true;
  runChallenge();
});
document.querySelectorAll("[data-go-alternatives]").forEach((b) => b.addEventListener("click", goAlternatives));
load();
