// Shared by the page's parts: element lookup, status lines, the API key, server errors.

export const $ = (id) => document.getElementById(id);

export function setState(el, state, text) {
  el.dataset.state = state;
  el.textContent = text;
}

export function apiKey() {
  return $("api-key").value.trim();
}

// REST requests carry the key in a header; it is never put in a URL.
export function authHeaders() {
  const key = apiKey();
  return key ? { "X-API-Key": key } : {};
}

// A browser's WebSocket cannot carry headers: the key is exchanged for a short-lived token
// (POST v1/token), which the stream's URL carries as ?token=. No key: no token.
export async function streamToken() {
  if (!apiKey()) return null;
  const response = await fetch("v1/token", { method: "POST", headers: authHeaders() });
  if (!response.ok) throw await httpError(response);
  return (await response.json()).token;
}

export class ServerError extends Error {
  constructor(state, code, message) {
    super(message);
    this.state = state; // "over-capacity", "auth" or "error": how the page shows it
    this.code = code;
  }
}

export async function httpError(response) {
  let code = `http_${response.status}`;
  let message = response.statusText || "request failed";
  try {
    const body = await response.json();
    code = body.error?.code ?? code;
    message = body.error?.message ?? body.detail ?? message;
  } catch {
    // not JSON (a proxy's page): keep the status line
  }
  const retry = response.headers.get("Retry-After");
  if (response.status === 503 || response.status === 429) {
    const when = retry ? `retry in ${retry} s` : "retry shortly";
    return new ServerError("over-capacity", code, `Server busy (${response.status} ${code}): ${message}; ${when}.`);
  }
  if (response.status === 401 || response.status === 403) {
    return new ServerError("auth", code, authText(`${response.status} ${code}`, message));
  }
  return new ServerError("error", code, `${response.status} ${code}: ${message}`);
}

// Refused for want of a (valid) key: say what to do, and open the key field.
export function authText(status, message) {
  $("access").open = true;
  if (!apiKey()) return `This server requires an API key: enter it under “API key” above (${status}).`;
  return `The API key was refused (${status}): ${message}`;
}

export function fmtScore(score) {
  return score === null || score === undefined ? "–" : score.toFixed(3);
}

// A verdict into its score and label elements, shown and kept in data-score / data-label.
export function showVerdict(scoreId, labelId, score, label) {
  const scoreEl = $(scoreId);
  scoreEl.textContent = fmtScore(score);
  scoreEl.dataset.score = String(score);
  const labelEl = $(labelId);
  labelEl.textContent = label;
  labelEl.dataset.label = label;
}

// What a share means for each reason (GateReason.share in the API's schemas).
const SHARE_OF = {
  static_input: "of the frame pairs unchanged",
  looped_input: "of the changing frames repeat earlier ones",
};

// The first line over a result's failed gates: why they matter to this outcome.
function reasonsIntro({ label, model_label: model, gates }) {
  if (gates !== "enforce") {
    return `The capture checks found problems (gates “${gates}”: reported only, the label is the model's):`;
  }
  if (label === "inconclusive") {
    return `Inconclusive: the capture could not be judged (the model alone said ${model}). What to fix, then try again:`;
  }
  const alone = model === label ? "" : ` (the model alone said ${model})`;
  return `The capture checks found input no live camera produces, so the result is ${label} whatever the score${alone}:`;
}

// A result's failed gates (LivenessResult.reasons) into ``el``: an intro line and one item
// per reason, its hint first; hidden when every gate passed. data-label carries the
// outcome for the colour, each item's data-code its reason code.
export function showReasons(el, result) {
  const reasons = result.reasons ?? [];
  el.dataset.label = result.label;
  el.hidden = reasons.length === 0;
  el.replaceChildren();
  if (!reasons.length) return;
  const intro = document.createElement("p");
  intro.textContent = reasonsIntro(result);
  const list = document.createElement("ul");
  for (const r of reasons) {
    const item = document.createElement("li");
    item.dataset.code = r.code;
    item.dataset.share = String(r.share);
    const detail = document.createElement("small");
    detail.className = "muted";
    detail.textContent = ` (${r.code}: ${Math.round(100 * r.share)} % ${SHARE_OF[r.code] ?? "of the frames"})`;
    item.append(r.hint, detail);
    list.append(item);
  }
  el.append(intro, list);
}

// The outcome in words, for status lines.
export function outcomeText(r) {
  if (r.label === "inconclusive") return "inconclusive — the capture could not be judged";
  return r.label;
}
