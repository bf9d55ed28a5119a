// What the page is running in, read before the consent: an in-app webview (WeChat, Alipay, …),
// an iOS too old for the camera in a web view, a browser without camera access at all, or a
// desktop (better on a phone).  Each gets its own explicit path (docs/CAPTURE.md, "Environment
// matrix"); nothing is ever silently downgraded to a still photo.

const IN_APP = [
  ["wechat", /MicroMessenger/i],
  ["wecom", /wxwork/i],
  ["alipay", /AlipayClient/i],
  ["dingtalk", /DingTalk/i],
  ["qq", /\bQQ\/\d/i],
  ["weibo", /Weibo/i],
  ["douyin", /aweme|BytedanceWebview|ByteLocale/i],
  ["webview", /; wv\)/],
];

// Camera quality below which the live challenge is unreliable: a long side under 480 px, a
// short side under 360 px, or fewer than 15 frames a second.
export const MIN_LONG_SIDE_PX = 480;
export const MIN_SHORT_SIDE_PX = 360;
export const MIN_FPS = 15;

export function detect(nav = navigator, win = window) {
  const ua = nav.userAgent || "";
  const inApp = (IN_APP.find(([, re]) => re.test(ua)) || [null])[0];
  const iosMatch = /\b(?:iPhone|iPad|iPod)\b.*? OS (\d+)[_.](\d+)/.exec(ua);
  const ios = iosMatch ? { major: Number(iosMatch[1]), minor: Number(iosMatch[2]) } : null;
  const iosSafari = Boolean(ios) && /Version\/[\d.]+.*Safari/.test(ua) && !/CriOS|FxiOS|EdgiOS/.test(ua);
  // A phone asking for the desktop site sends a desktop user agent: a touch screen this narrow
  // is still a phone.
  const narrowTouch = (nav.maxTouchPoints || 0) > 0 && Math.min(win.screen?.width || 0, win.screen?.height || 0) < 600;
  const mobile = Boolean(ios) || /Android|Mobile|HarmonyOS/i.test(ua) || narrowTouch;
  const canStream = Boolean(nav.mediaDevices && nav.mediaDevices.getUserMedia) && win.isSecureContext !== false;
  return { ua, inApp, ios, iosSafari, mobile, desktop: !mobile, canStream };
}

function iosBelow(ios, major, minor) {
  return Boolean(ios) && (ios.major < major || (ios.major === major && ios.minor < minor));
}

// The path for an environment, or null when the page can go straight on:
// {kind, canContinue}.  kinds: ios_too_old, in_app, no_camera_api, desktop.
export function pathFor(env) {
  if (iosBelow(env.ios, 11, 0)) return { kind: "ios_too_old", canContinue: false };
  // Web views on iOS get the camera only from 14.3 (WKWebView getUserMedia).
  if (env.ios && !env.iosSafari && iosBelow(env.ios, 14, 3)) return { kind: "in_app", canContinue: false };
  if (env.inApp) return { kind: "in_app", canContinue: env.canStream };
  if (!env.canStream) return { kind: "no_camera_api", canContinue: false };
  if (env.desktop) return { kind: "desktop", canContinue: true };
  return null;
}

// The camera actually opened: too poor for the live challenge?
export function cameraTooPoor(stream) {
  const track = stream?.getVideoTracks?.()[0];
  const s = track?.getSettings?.() || {};
  if (!s.width || !s.height) return null;
  const long = Math.max(s.width, s.height);
  const short = Math.min(s.width, s.height);
  const fps = s.frameRate || MIN_FPS;
  if (long < MIN_LONG_SIDE_PX || short < MIN_SHORT_SIDE_PX || fps < MIN_FPS) {
    return { width: s.width, height: s.height, fps: Math.round(fps) };
  }
  return null;
}
