// A clip sent to POST /v1/liveness: its outcome, the failed capture checks with what to fix,
// and a timeline of window scores and attention.

import { $, authHeaders, fmtScore, httpError, outcomeText, ServerError, setState, showReasons, showVerdict } from "./common.js";

const SVG = "http://www.w3.org/2000/svg";

function uploadState(state, text) {
  setState($("upload-state"), state, text);
}

export async function uploadClip(event) {
  event.preventDefault();
  const file = $("clip").files[0];
  if (!file) {
    uploadState("error", "Pick a video file first.");
    return;
  }
  $("upload").disabled = true;
  $("clip-result").hidden = true;
  uploadState("uploading", `Scoring ${file.name} (${(file.size / 1e6).toFixed(2)} MB)…`);
  try {
    const form = new FormData();
    form.append("file", file);
    const response = await fetch("v1/liveness", { method: "POST", body: form, headers: authHeaders() });
    if (!response.ok) throw await httpError(response);
    const result = await response.json();
    showClip(result);
    const codes = result.reasons.map((r) => r.code).join(", ");
    const why = codes ? `; ${codes}` : "";
    uploadState("done", `${file.name}: ${outcomeText(result)} (score ${fmtScore(result.score)}${why}).`);
  } catch (err) {
    if (err instanceof ServerError) uploadState(err.state, err.message);
    else uploadState("error", `Cannot reach the server: ${err.message}`);
  } finally {
    $("upload").disabled = false;
  }
}

function showClip(r) {
  $("clip-result").hidden = false;
  $("clip-result").dataset.label = r.label;
  showVerdict("clip-score", "clip-label", r.score, r.label);
  showReasons($("clip-reasons"), r);
  const faces = r.frames.filter((f) => f.box !== null).length;
  const model = r.model_label === r.label ? "" : ` · the model alone: ${r.model_label}`;
  $("clip-summary").textContent = `threshold ${r.threshold.toFixed(3)}${model} · gates ${r.gates} · ${r.windows.length} windows · ${r.frames.length} frames processed of ${r.frames_decoded} decoded, ${faces} with a face · ${r.timing_ms.total.toFixed(0)} ms · model ${r.model.name} (${r.model.backbone}, ${r.model.hash})`;
  drawTimeline(r);
}

function svgEl(tag, attrs, title) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (title) {
    const t = document.createElementNS(SVG, "title");
    t.textContent = title;
    el.append(t);
  }
  return el;
}

// Three bands over the clip's frame indices: window scores (0..1, threshold dashed),
// per-frame attention (scaled to the largest weight), face present or not.
function drawTimeline(r) {
  const svg = $("timeline");
  svg.replaceChildren();
  const W = 800;
  const n = Math.max(r.frames_decoded, ...r.frames.map((f) => f.index + 1));
  const x = (i) => (i / n) * W;
  const step = W / n;
  const score = { top: 8, h: 90 };
  const att = { top: 112, h: 50 };
  const face = { top: 172, h: 10 };
  const yScore = (s) => score.top + (1 - s) * score.h;
  svg.append(svgEl("rect", { class: "band", x: 0, y: score.top, width: W, height: score.h }));
  svg.append(svgEl("line", { class: "threshold", x1: 0, x2: W, y1: yScore(r.threshold), y2: yScore(r.threshold) }, `threshold ${r.threshold.toFixed(3)}`));
  for (const w of r.windows) {
    svg.append(svgEl("line", {
      class: `window ${w.score >= r.threshold ? "genuine" : "spoof"}`,
      x1: x(w.start), x2: x(w.end + 1), y1: yScore(w.score), y2: yScore(w.score),
      "data-start": w.start, "data-end": w.end, "data-score": w.score,
    }, `frames ${w.start}–${w.end}: score ${w.score.toFixed(3)}`));
  }
  const weights = r.frames.filter((f) => f.attention !== null);
  // as in the stream's strip: uniform weights reach half the band, peaked ones more
  const longest = Math.max(...r.windows.map((w) => w.frames.length));
  const top = Math.max(...weights.map((f) => f.attention), 2 / longest);
  for (const f of weights) {
    const h = (att.h * f.attention) / top;
    svg.append(svgEl("rect", {
      class: "attention", x: x(f.index), y: att.top + att.h - h, width: Math.max(1, step * 0.8), height: h,
      "data-index": f.index, "data-attention": f.attention,
    }, `frame ${f.index} (t ${f.t.toFixed(2)} s): attention ${f.attention.toFixed(3)}`));
  }
  for (const f of r.frames) {
    svg.append(svgEl("rect", {
      class: f.box ? "face" : "noface", x: x(f.index), y: face.top, width: Math.max(1, step), height: face.h,
    }));
  }
  const last = r.frames[r.frames.length - 1];
  $("axis-start").textContent = "frame 0 · 0.00 s";
  $("axis-end").textContent = last ? `frame ${last.index} · ${last.t.toFixed(2)} s` : "";
}
