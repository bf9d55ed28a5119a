// Camera access and frame grabbing.  Ideal (never exact) constraints: an exact facingMode or
// size fails with OverconstrainedError on devices (and fake devices) that cannot match it.
// `facing`: "user" for the selfie, "environment" (the rear camera, sharper) for the ID card.
export async function openCamera(video, facing = "user") {
  const size = facing === "user" ? { width: { ideal: 1280 }, height: { ideal: 720 } } : { width: { ideal: 1920 }, height: { ideal: 1080 } };
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: false,
    video: { facingMode: { ideal: facing }, ...size, frameRate: { ideal: 30 } },
  });
  video.srcObject = stream;
  await video.play().catch(() => {});
  if (!video.videoWidth) {
    await new Promise((r) => video.addEventListener("loadedmetadata", r, { once: true }));
  }
  return stream;
}

// The camera's name as the browser reports it ("OBS Virtual Camera", "FaceTime HD Camera"): the
// server's injection check reads it as one weak signal.  Empty before permission: null.
export function cameraLabel(stream) {
  return stream?.getVideoTracks?.()[0]?.label?.slice(0, 256) || null;
}

export function stopCamera(stream) {
  stream?.getTracks().forEach((t) => t.stop());
}

// A JPEG of the current video frame, `width` px wide, unmirrored (the preview is mirrored by CSS
// only; the server expects the camera's own orientation: "turn left" moves the nose right).
export function grabber(video, width) {
  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  return {
    draw() {
      const w = Math.min(width, video.videoWidth || width);
      const h = Math.round((w * (video.videoHeight || 480)) / (video.videoWidth || 640));
      if (canvas.width !== w || canvas.height !== h) {
        canvas.width = w;
        canvas.height = h;
      }
      ctx.drawImage(video, 0, 0, w, h);
      return canvas;
    },
    jpeg(quality = 0.85) {
      return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", quality));
    },
    // Mean luma of the centre (where the oval is), 0–255: a quick local "too dark" hint.
    centreLuma() {
      const { width: w, height: h } = canvas;
      const data = ctx.getImageData(Math.round(w * 0.3), Math.round(h * 0.2), Math.round(w * 0.4), Math.round(h * 0.6)).data;
      let sum = 0;
      for (let i = 0; i < data.length; i += 16) sum += 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
      return sum / (data.length / 16);
    },
  };
}
