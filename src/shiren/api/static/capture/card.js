// The card step (a card capture's link): the rear camera, a card-shaped guide, the server's
// framing guidance (~1.4×/s on 640-px frames), one photo per side at the camera's full size,
// then the card is sent; on success the page moves to the selfie session it opened.
import { ApiError } from "./api.js";
import { grabber, openCamera, stopCamera } from "./camera.js";

const GUIDE_INTERVAL_MS = 700;
const SHOOT_ANYWAY_MS = 6000;
const $ = (sel) => document.querySelector(sel);

export function createCardStep({ api, t, show, state, onFatal, onCameraError }) {
  let loop = null;
  let stream = null;

  function sides() {
    return state.info.back_required ? ["front", "back"] : ["front"];
  }

  async function start(tips = []) {
    show("camera");
    $("#camera-error").hidden = true;
    $("#camera-retry").hidden = true;
    try {
      stream = await openCamera($("#card-preview"), "environment");
    } catch (err) {
      onCameraError(err);
      return;
    }
    state.stream = stream;
    show("card");
    shoot(0, [], tips);
  }

  // Frame side `i` (photos of the earlier sides in `taken`).
  function shoot(i, taken, tips = []) {
    const side = sides()[i];
    const sideName = t(side === "front" ? "card_front" : "card_back");
    const video = $("#card-preview");
    const small = grabber(video, 640);
    const full = grabber(video, 1920);
    const button = $("#card-shoot");
    const tipList = $("#card-tips");
    tipList.replaceChildren(...tips.map((text) => Object.assign(document.createElement("li"), { textContent: text })));
    tipList.hidden = !tips.length;
    $("#card-side").textContent = t("card_side", { n: i + 1, total: sides().length, side: sideName });
    const f = { timer: 0, busy: false, last: 0, passed: false, started: performance.now(), tip: t("card_framing", { side: sideName }) };
    loop = f;
    button.disabled = true;
    button.textContent = t("card_shoot");
    $("#card-ring").classList.remove("good");
    setPrompt(f.tip);
    f.timer = setInterval(async () => {
      if (!video.videoWidth || loop !== f) return;
      const now = performance.now();
      if (!f.busy && now - f.last >= GUIDE_INTERVAL_MS) {
        f.busy = true;
        f.last = now;
        try {
          small.draw();
          const g = await api.cardGuide(await small.jpeg(0.8));
          f.passed = g.passed;
          f.tip = g.passed ? t("card_ok") : g.tip;
          $("#card-ring").classList.toggle("good", g.passed);
        } catch (err) {
          if (!(err instanceof ApiError && err.status === 429)) f.tip = tipOf(err);
        } finally {
          f.busy = false;
        }
      }
      if (loop !== f) return;
      setPrompt(f.tip);
      const late = now - f.started > SHOOT_ANYWAY_MS;
      button.disabled = !(f.passed || late);
      button.textContent = f.passed || !late ? t("card_shoot") : t("card_shoot_anyway");
    }, 150);
    button.onclick = async () => {
      button.disabled = true;
      stop();
      full.draw();
      const photo = await full.jpeg(0.92);
      const next = [...taken, photo];
      if (next.length < sides().length) shoot(i + 1, next);
      else await send(next);
    };
  }

  async function send([front, back]) {
    stopCamera(stream);
    stream = state.stream = null;
    show("upload");
    $("#upload-text").textContent = t("card_reading");
    try {
      const next = await api.card(front, back);
      sessionStorage.setItem(`shiren.receipt.${next.capture_token}`, next.receipt);
      location.assign(`${next.capture_path}?lang=${state.lang}`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 400) {
        const tips = err.problem?.extra?.tips?.length ? err.problem.extra.tips : [t("card_retake")];
        await start(tips);
        setPrompt(t("card_retake"));
        return;
      }
      onFatal(err);
    }
  }

  function stop() {
    if (loop) clearInterval(loop.timer);
    loop = null;
  }

  function tipOf(err) {
    return err instanceof ApiError && err.problem?.extra?.tips?.length ? err.problem.extra.tips[0] : t("error_generic");
  }

  function setPrompt(text) {
    const el = $("#card-prompt");
    if (el.textContent !== text) el.textContent = text;
  }

  return { start, stop };
}
