// The capture API, authorised by the token in the page's URL (no lender key ever reaches here).
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem?.code || "http.error";
    this.problem = problem;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function createApi(token, getLang) {
  const base = `/v1/capture/${encodeURIComponent(token)}`;
  let receipt = null;

  async function call(path, { method = "GET", body, headers = {}, signal } = {}) {
    const res = await fetch(`${base}${path}?lang=${encodeURIComponent(getLang())}`, {
      method,
      body,
      signal,
      headers: { ...headers, ...(receipt ? { "X-Shiren-Consent": receipt } : {}) },
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

  return {
    setReceipt: (value) => (receipt = value),
    info: () => call(""),
    retry: () => call("/retry", { method: "POST" }),
    async consent(accepted) {
      const out = await call("/consent", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ accepted, lang: getLang() }),
      });
      if (out.receipt) receipt = out.receipt;
      return out;
    },
    quality: (blob, signal) =>
      call("/quality", { method: "POST", headers: { "Content-Type": "image/jpeg" }, body: blob, signal }),
    result: () => call("/result"),
    cardGuide: (blob, signal) =>
      call("/id-card/guide", { method: "POST", headers: { "Content-Type": "image/jpeg" }, body: blob, signal }),
    card(front, back) {
      const form = new FormData();
      form.append("front", front, "front.jpg");
      if (back) form.append("back", back, "back.jpg");
      return call("/id-card", { method: "POST", body: form });
    },

    // Submit once, surviving a slow or dropped network: retry with exponential backoff on
    // network errors, 5xx and 429; a 409 session.already_used means an earlier try DID reach
    // the server (its answer was lost), so poll the result instead of submitting again.
    async submit(nonce, frames, cameraLabel, onAttempt) {
      const maxTries = 5;
      for (let attempt = 1; ; attempt++) {
        onAttempt?.({ attempt, waitingMs: 0 });
        const form = new FormData();
        const meta = { nonce, t_ms: frames.map((f) => f.t), ...(cameraLabel ? { camera_label: cameraLabel } : {}) };
        form.append("meta", JSON.stringify(meta));
        frames.forEach((f, i) => form.append("frames", f.blob, `${String(i).padStart(4, "0")}.jpg`));
        try {
          return await call("/frames", { method: "POST", body: form });
        } catch (err) {
          if (err instanceof ApiError && err.code === "session.already_used") {
            return await pollResult(this.result, onAttempt);
          }
          const transient = !(err instanceof ApiError) || err.status >= 500 || err.status === 429;
          if (!transient || attempt >= maxTries) throw err;
          const waitMs = Math.min(16000, 1000 * 2 ** (attempt - 1)) + Math.random() * 250;
          onAttempt?.({ attempt: attempt + 1, waitingMs: waitMs });
          await sleep(waitMs);
        }
      }
    },
  };
}

async function pollResult(result, onAttempt) {
  for (let i = 0; i < 60; i++) {
    onAttempt?.({ polling: true });
    try {
      const r = await result();
      if (r.decision) return r;
    } catch (err) {
      if (err instanceof ApiError && err.status < 500 && err.status !== 429) throw err;
    }
    await sleep(Math.min(5000, 500 * 2 ** Math.min(i, 3)));
  }
  throw new ApiError(504, { code: "capture.result_timeout", title: "no result" });
}
