// The record-and-upload fallback (issue 17): where the browser cannot stream the camera (an old
// in-app web view, no camera API, a camera that will not start), the borrower films the actions
// with the phone's own camera app and uploads the file.  Never a silent downgrade to a still
// photo: the server switches the session to a fresh, signed "recorded" one (its own nonce and
// random actions, the old session expired) and judges the video by the level's rules.
import { ApiError } from "./api.js";

const $ = (sel) => document.querySelector(sel);

export function createRecordingStep({ token, t, show, state, getReceipt, onResult, onError }) {
  const base = `/v1/capture/${encodeURIComponent(token)}`;
  const query = () => `?lang=${encodeURIComponent(state.lang)}`;

  async function post(path, body) {
    const res = await fetch(`${base}${path}${query()}`, {
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

  // Switch this link's session to a recorded one and open its page (the receipt carries).
  async function open() {
    try {
      const rec = await post("/recording/open");
      sessionStorage.setItem(`shiren.receipt.${rec.capture_token}`, rec.receipt);
      sessionStorage.setItem("shiren.env.ok", "1");
      location.assign(`${rec.capture_path}?lang=${state.lang}`);
    } catch (err) {
      onError(err);
    }
  }

  // This link's session is the recorded one: show what to film, take the file, upload it.
  function render() {
    const actions = state.info.challenge.actions.map((a) => t(`action_${a.action}`));
    $("#rec-actions").replaceChildren(...actions.map((text) => Object.assign(document.createElement("li"), { textContent: text })));
    $("#rec-text").textContent = t("rec_text", { n: state.info.recording?.max_seconds ?? 20 });
  }

  function start() {
    render();
    $("#rec-status").textContent = "";
    const input = $("#rec-input");
    input.value = "";
    input.onchange = () => upload(input.files && input.files[0]);
    show("recording");
  }

  async function upload(file) {
    if (!file) return;
    const max = state.info.recording?.max_bytes ?? 40 * 1024 * 1024;
    if (file.size > max) {
      $("#rec-status").textContent = t("rec_too_big");
      return;
    }
    $("#rec-pick").classList.add("busy");
    $("#rec-status").textContent = t("rec_uploading");
    const form = new FormData();
    form.append("nonce", state.info.nonce);
    form.append("video", file, file.name || "recording.mp4");
    try {
      onResult(await post("/recording", form));
    } catch (err) {
      $("#rec-pick").classList.remove("busy");
      // an unreadable or too long video burned nothing: say so and let them film again
      if (err instanceof ApiError && err.status === 400) {
        $("#rec-status").textContent = err.code === "input.recording_too_long" ? t("rec_too_big") : t("rec_failed");
      } else onError(err);
    }
  }

  return { open, start, render };
}
