// The camera streamed over WS /v1/stream: live score, face box, the window's frames, and
// the capture checks' hints (what to change in front of the camera) frame by frame.
//
// Flow control: one frame in flight. The next frame is captured and sent only once the
// server has answered the previous one ("frame", "dropped" or an "error" with its index)
// and the chosen rate allows it, so the page never queues frames on the server.

import { $, authText, fmtScore, outcomeText, ServerError, setState, showReasons, showVerdict, streamToken } from "./common.js";

const MAX_IN_FLIGHT = 1; // frames sent and not yet answered
const SEND_LONG_SIDE = 640; // px: frames are scaled down to this before JPEG encoding
const JPEG_QUALITY = 0.85;
const THUMB_HEIGHT = 72; // px: filmstrip thumbnails kept per sent frame
const KEEP_FRAMES = 240; // sent frames remembered (thumbnail, answer) for the filmstrip
const AUTH_CODES = ["unauthorized", "forbidden", "invalid_token", "token_expired"];

const stream = {
  media: null, // the camera's MediaStream
  ws: null,
  fps: 12,
  threshold: null,
  windowLength: null,
  nextIndex: 0, // index of the next frame to send (the server counts the same way)
  inFlight: 0,
  lastSendAt: 0,
  timer: null,
  sent: 0,
  ending: false,
  lastError: null, // the server's last error message, shown when it closes the socket
  frames: new Map(), // index -> {thumb, encoded, box}: what was sent and what came back
  sendSize: { w: 0, h: 0 },
};
const capture = document.createElement("canvas"); // the frame as sent (JPEG source)
const thumbCanvas = document.createElement("canvas");

function streamState(state, text) {
  setState($("stream-state"), state, text);
}

export async function startStream() {
  if (stream.ws) return;
  stream.fps = Number($("fps").value);
  $("start").disabled = true;
  $("fps").disabled = true;
  $("stream-result").hidden = true;
  showHints([]);
  try {
    await openCamera();
  } catch (err) {
    stopCamera();
    resetControls();
    cameraFailed(err);
    return;
  }
  try {
    streamState("connecting", "Connecting to the server…");
    openSocket(await streamToken());
    $("stop").disabled = false;
  } catch (err) {
    stopCamera();
    resetControls();
    if (err instanceof ServerError) streamState(err.state, err.message);
    else streamState("error", `Cannot reach the server: ${err.message}`);
  }
}

async function openCamera() {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw Object.assign(new Error("the camera needs a secure page (https or localhost)"), {
      name: "InsecureContext",
    });
  }
  streamState("connecting", "Asking for the camera…");
  stream.media = await navigator.mediaDevices.getUserMedia({
    video: { width: { ideal: 640 }, height: { ideal: 480 } },
    audio: false,
  });
  const video = $("video");
  video.srcObject = stream.media;
  await video.play();
  $("stage-note").hidden = true;
  if (!video.videoWidth) await new Promise((ok) => video.addEventListener("loadedmetadata", ok, { once: true }));
  const scale = Math.min(1, SEND_LONG_SIDE / Math.max(video.videoWidth, video.videoHeight));
  stream.sendSize = { w: Math.round(video.videoWidth * scale), h: Math.round(video.videoHeight * scale) };
  capture.width = $("overlay").width = stream.sendSize.w;
  capture.height = $("overlay").height = stream.sendSize.h;
  $("stage").style.aspectRatio = `${video.videoWidth} / ${video.videoHeight}`;
}

function cameraFailed(err) {
  const denied = err.name === "NotAllowedError" || err.name === "SecurityError";
  if (denied) {
    streamState("no-permission", "No camera permission: allow the camera for this page in the browser, then press “Start camera” again.");
  } else if (err.name === "NotFoundError" || err.name === "OverconstrainedError") {
    streamState("no-camera", "No camera found on this device. You can still score a clip below.");
  } else {
    streamState("no-camera", `The camera cannot be used (${err.name}): ${err.message}`);
  }
}

function openSocket(token) {
  const url = new URL("v1/stream", location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  if (token) url.searchParams.set("token", token);
  const ws = new WebSocket(url);
  stream.ws = ws;
  Object.assign(stream, { nextIndex: 0, inFlight: 0, sent: 0, ending: false, lastError: null });
  stream.frames.clear();
  ws.onopen = () => ws.send(JSON.stringify({ type: "start", fps: stream.fps }));
  ws.onmessage = (event) => onMessage(JSON.parse(event.data));
  ws.onclose = (event) => onClose(event);
}

function onMessage(m) {
  if (m.type === "ready") {
    stream.threshold = m.threshold;
    stream.windowLength = m.window.length;
    $("live-threshold").textContent = m.threshold.toFixed(3);
    $("live-gates").textContent = m.gates;
    $("meter-tick").style.left = `${100 * m.threshold}%`;
    $("meter-tick").hidden = false;
    streamState("streaming", `Streaming at up to ${stream.fps} fps; the score appears once ${m.window.length} face frames fill a window.`);
    pump();
  } else if (m.type === "frame") {
    answered();
    onFrame(m);
  } else if (m.type === "dropped") {
    answered();
    $("live-dropped").textContent = `${m.dropped} (last: ${m.reason})`;
  } else if (m.type === "error") {
    if (m.index !== undefined) answered(); // a bad frame: the stream goes on
    stream.lastError = m;
  } else if (m.type === "result") {
    showStreamResult(m);
  }
}

function answered() {
  stream.inFlight = Math.max(0, stream.inFlight - 1);
  pump();
}

function onFrame(m) {
  const seen = stream.frames.get(m.index);
  if (seen) Object.assign(seen, { encoded: m.encoded, box: m.box });
  drawBox(m.box);
  $("live-latency").textContent = `${m.latency_ms.toFixed(1)} ms`;
  if (!stream.ending) {
    showHints(m.hints);
    if (m.box === null) streamState("no-face", "No face in view: face the camera, in good light.");
    else if (m.score === null) streamState("streaming", `Face found; filling the first window (${stream.windowLength} face frames)…`);
    else streamState("streaming", "Streaming: live score of the latest window.");
  }
  if (m.score === null) return;
  showVerdict("live-score", "live-label", m.score, m.label);
  $("live-window").textContent = `frames ${m.window[0]}–${m.window[1]}`;
  const fill = $("meter-fill");
  fill.style.width = `${100 * m.score}%`;
  fill.dataset.label = m.label;
  showWindow(m.window, m.attention);
}

// The frame's hints under the video, one item each (data-code: the reason code); empty when
// the capture is fine. The list is rebuilt only when the codes change, so a screen reader
// (aria-live) hears each new piece of guidance once, not at every frame.
function showHints(hints) {
  const list = $("live-hints");
  const codes = hints.map((h) => h.code).join(" ");
  if (list.dataset.codes === codes) return;
  list.dataset.codes = codes;
  list.replaceChildren(...hints.map((h) => {
    const item = document.createElement("li");
    item.dataset.code = h.code;
    item.textContent = h.hint;
    return item;
  }));
}

function drawBox(box) {
  const overlay = $("overlay");
  const ctx = overlay.getContext("2d");
  ctx.clearRect(0, 0, overlay.width, overlay.height);
  if (!box) return;
  ctx.lineWidth = Math.max(2, overlay.width / 200);
  ctx.strokeStyle = "#26c281";
  ctx.strokeRect(box[0], box[1], box[2], box[3]);
}

// The window's frames are its last `attention.length` encoded frames in [start, end]:
// the server reports each frame's `encoded`, the page keeps each sent frame's thumbnail.
function windowFrames([start, end], count) {
  const indices = [];
  for (let i = start; i <= end; i += 1) if (stream.frames.get(i)?.encoded) indices.push(i);
  return indices.slice(-count);
}

function showWindow(span, attention) {
  const indices = windowFrames(span, attention.length);
  const strip = $("filmstrip");
  const bars = $("attention");
  strip.replaceChildren();
  bars.replaceChildren();
  // bar heights: uniform weights (1/T each) fill half the strip, a peaked window more
  const top = Math.max(...attention, 2 / attention.length);
  attention.forEach((weight, k) => {
    const index = indices.length === attention.length ? indices[k] : null;
    const img = document.createElement("img");
    img.alt = index === null ? "frame not kept" : `frame ${index}`;
    if (index !== null) {
      img.src = stream.frames.get(index).thumb;
      img.dataset.index = String(index);
    }
    strip.append(img);
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.dataset.weight = String(weight);
    if (index !== null) bar.dataset.index = String(index);
    bar.title = `frame ${index ?? "?"}: attention ${weight.toFixed(3)}`;
    const fill = document.createElement("span");
    fill.style.height = `${(100 * weight) / top}%`;
    const value = document.createElement("small");
    value.textContent = weight.toFixed(2);
    bar.append(fill, value);
    bars.append(bar);
  });
  for (const el of [strip, bars]) el.style.gridTemplateColumns = `repeat(${attention.length}, 1fr)`;
  $("window-view").dataset.frames = String(attention.length);
}

// Capture and send the next frame when none is in flight and the rate allows it.
function pump() {
  clearTimeout(stream.timer);
  const ws = stream.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN || stream.ending || stream.threshold === null) return;
  if (stream.inFlight >= MAX_IN_FLIGHT) return; // the next answer calls pump again
  const wait = stream.lastSendAt + 1000 / stream.fps - performance.now();
  if (wait > 0) {
    stream.timer = setTimeout(pump, wait);
    return;
  }
  stream.lastSendAt = performance.now();
  stream.inFlight += 1;
  sendFrame(ws);
}

function sendFrame(ws) {
  const { w, h } = stream.sendSize;
  const index = stream.nextIndex;
  stream.nextIndex += 1;
  capture.getContext("2d").drawImage($("video"), 0, 0, w, h);
  thumbCanvas.height = THUMB_HEIGHT;
  thumbCanvas.width = Math.round((THUMB_HEIGHT * w) / h);
  thumbCanvas.getContext("2d").drawImage(capture, 0, 0, thumbCanvas.width, thumbCanvas.height);
  stream.frames.set(index, { thumb: thumbCanvas.toDataURL("image/jpeg", 0.7), encoded: false, box: null });
  stream.frames.delete(index - KEEP_FRAMES);
  capture.toBlob(async (blob) => {
    const jpeg = await blob.arrayBuffer();
    if (ws.readyState !== WebSocket.OPEN || stream.ending) return;
    ws.send(jpeg); // frames go in index order: only one is ever being encoded
    stream.sent += 1;
    $("live-sent").textContent = `${stream.sent} frames`;
  }, "image/jpeg", JPEG_QUALITY);
}

export function stopStream() {
  const ws = stream.ws;
  if (!ws) return;
  $("stop").disabled = true;
  stream.ending = true;
  clearTimeout(stream.timer);
  if (ws.readyState === WebSocket.OPEN) {
    streamState("connecting", "Finishing: waiting for the stream's result…");
    ws.send(JSON.stringify({ type: "end" })); // the server answers with the result, then closes
  } else {
    ws.close();
  }
  stopCamera();
}

function onClose(event) {
  const error = stream.lastError;
  const ended = stream.ending;
  stream.ws = null;
  stream.threshold = null;
  clearTimeout(stream.timer);
  stopCamera();
  resetControls();
  drawBox(null);
  showHints([]); // the camera is off: nothing to change in front of it
  const why = error ? `${error.code}: ${error.message}` : event.reason || "no reason given";
  if (event.code === 1013) {
    const busy = error ? error.message : event.reason || "the server is at its stream limit";
    streamState("over-capacity", `Server busy: ${busy} (close 1013${error ? ` ${error.code}` : ""}). Try again in a moment.`);
  } else if (error && AUTH_CODES.includes(error.code)) {
    streamState("auth", authText(`close ${event.code} ${error.code}`, error.message));
  } else if (event.code === 1000 && ended) {
    if (error) streamState("ended", `Stream ended without a result (${why}).`);
    else streamState("ended", "Stream ended. Press “Start camera” to stream again.");
  } else if (event.code === 1001) {
    streamState("error", "The server is restarting (1001): start again in a moment.");
  } else if (event.code === 1006) {
    streamState("error", "The connection to the server was lost (1006).");
  } else {
    streamState("error", `The server closed the stream (${event.code} ${why}).`);
  }
}

function stopCamera() {
  stream.media?.getTracks().forEach((track) => track.stop());
  stream.media = null;
  $("video").srcObject = null;
  $("stage-note").hidden = false;
}

function resetControls() {
  $("start").disabled = false;
  $("stop").disabled = true;
  $("fps").disabled = false;
}

function showStreamResult(m) {
  const el = $("stream-result");
  el.hidden = false;
  el.dataset.score = String(m.score);
  el.dataset.label = m.label;
  const model = m.model_label === m.label ? "" : `; the model alone: ${m.model_label}`;
  $("stream-summary").textContent = `Stream result: ${outcomeText(m)} (score ${fmtScore(m.score)}, threshold ${m.threshold.toFixed(3)}${model}) from ${m.windows.length} windows over ${m.frames_decoded} frames, ${m.dropped} dropped.`;
  showReasons($("stream-reasons"), m);
}
