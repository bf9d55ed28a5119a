"""Record the frame times (``t_ms``) the capture page's timer really produces, in real Chromium.

``shiren eval injection`` needs live sessions whose frame times look like what the capture page
uploads, and a simulation cannot invent the jitter of a browser's timer honestly.  This script
runs the capture page's own challenge loop (``src/shiren/api/static/capture/app.js``,
``runChallenge``: a ``setInterval`` of ``FRAME_INTERVAL_MS`` that draws the camera's frame on a
640-px canvas and starts a JPEG encode at quality 0.85, beside a ``requestAnimationFrame`` loop
that paints the colour flash) in headless Chromium with a fake camera, and keeps the ``t_ms``
list of each run exactly as the page would upload it (rounded to 0.1 ms).

    .venv/bin/python scripts/measure_page_timing.py --runs 24 \
        --out src/shiren/eval/annotations/page_timing_chromium.json

The loop below mirrors ``runChallenge``; if the page's timer changes, change it here too and
re-record.  The traces describe *one* desktop Chromium on the machine that ran the script (load
included), not phones: the report built on them says so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.server
import json
import os
import platform
import re
import socketserver
import subprocess
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP_JS = ROOT / "src" / "shiren" / "api" / "static" / "capture" / "app.js"
CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
)

PAGE = """<!doctype html><html><body style="margin:0">
<video id="v" autoplay muted playsinline style="width:320px"></video>
<div id="flash" hidden style="position:fixed;inset:0"></div>
<script>
const FRAME_INTERVAL_MS = %(interval)s;
async function run(durationMs, colours) {
  const video = document.getElementById("v");
  const stream = await navigator.mediaDevices.getUserMedia({audio: false,
    video: {width: {ideal: 1280}, height: {ideal: 720}, frameRate: {ideal: 30}}});
  video.srcObject = stream;
  await video.play().catch(() => {});
  if (!video.videoWidth) {
    await new Promise(r => video.addEventListener("loadedmetadata", r, {once: true}));
  }
  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d", {willReadFrequently: true});
  const flash = document.getElementById("flash");
  const frames = [];
  const endMs = durationMs + 300;
  const t0 = performance.now();
  const timer = setInterval(() => {
    const tm = performance.now() - t0;
    const w = Math.min(640, video.videoWidth || 640);
    const h = Math.round((w * (video.videoHeight || 480)) / (video.videoWidth || 640));
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    ctx.drawImage(video, 0, 0, w, h);
    frames.push({t: Math.round(tm * 10) / 10,
                 blob: new Promise(res => canvas.toBlob(res, "image/jpeg", 0.85))});
  }, FRAME_INTERVAL_MS);
  await new Promise(done => {
    const tick = () => {
      const tm = performance.now() - t0;
      const c = colours.find(c => c[0] <= tm && tm < c[1]);
      flash.hidden = !c;
      if (c) flash.style.backgroundColor = c[2];
      if (tm >= endMs) done(); else requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  clearInterval(timer);
  await Promise.all(frames.map(f => f.blob));
  stream.getTracks().forEach(t => t.stop());
  return {t_ms: frames.map(f => f.t), width: canvas.width, height: canvas.height};
}
</script></body></html>"""


def page_interval_ms() -> float:
    found = re.search(r"FRAME_INTERVAL_MS\s*=\s*([0-9.]+)", APP_JS.read_text("utf-8"))
    if not found:
        raise SystemExit(f"FRAME_INTERVAL_MS not found in {APP_JS}")
    return float(found.group(1))


def serve(folder: Path) -> tuple[socketserver.TCPServer, int]:
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=str(folder), **k
    )
    server = socketserver.TCPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, int(server.server_address[1])


def chromium_version() -> str:
    try:
        return subprocess.run(
            [CHROMIUM, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout.strip()
    except OSError:
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=24)
    ap.add_argument("--duration-ms", type=float, default=8000.0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    interval = page_interval_ms()
    colours = [
        [800 + 300 * k, 1100 + 300 * k, c]
        for k, c in enumerate(
            ["rgb(255,0,255)", "rgb(0,255,0)", "rgb(0,0,255)", "rgb(255,255,0)"] * 2
        )
    ]
    traces: list[list[float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "index.html").write_text(PAGE % {"interval": interval}, "utf-8")
        server, port = serve(folder)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=list(FLAGS))
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{port}/index.html")
                for k in range(args.runs):
                    got = page.evaluate("([d, c]) => run(d, c)", [args.duration_ms, colours])
                    traces.append([float(t) for t in got["t_ms"]])
                    print(f"run {k + 1}/{args.runs}: {len(got['t_ms'])} frames", flush=True)
                size = [got["width"], got["height"]]
                browser.close()
        finally:
            server.shutdown()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    record = {
        "what": "t_ms lists of the capture page's challenge loop (setInterval + canvas draw + "
        "JPEG 0.85 + rAF flash loop) in headless Chromium with a fake camera",
        "script": "scripts/measure_page_timing.py",
        "frame_interval_ms": interval,
        "duration_ms": args.duration_ms,
        "canvas_size": size,
        "chromium": chromium_version(),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_average_at_end": load,
        },
        "recorded_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "traces": traces,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n", "utf-8")
    print(f"wrote {args.out} ({len(traces)} traces)")


if __name__ == "__main__":
    main()
