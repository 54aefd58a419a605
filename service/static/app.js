// The liveness demo page: the camera streamed over WS /v1/stream (stream.js), clips sent
// to POST /v1/liveness (clip.js). Plain browser JavaScript modules, no build step, no
// third-party code.

import { uploadClip } from "./clip.js";
import { $, httpError, setState } from "./common.js";
import { startStream, stopStream } from "./stream.js";

async function showModel() {
  const el = $("model-info");
  try {
    const response = await fetch("readyz");
    if (!response.ok) throw await httpError(response);
    const { model } = await response.json();
    setState(el, "ready", `Model: ${model.name} (${model.backbone}, ${model.hash})`);
  } catch (err) {
    setState(el, "error", `Server not ready: ${err.message}`);
  }
}

$("start").addEventListener("click", startStream);
$("stop").addEventListener("click", stopStream);
$("upload-form").addEventListener("submit", uploadClip);
showModel();
