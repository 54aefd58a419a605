"""The demo page (GET /) in a real headless Chromium against a real uvicorn server.

The browser's fake camera plays a y4m file made from a real face clip, so the page's
own code asks for the camera, streams JPEG frames over WS /v1/stream and draws what
comes back; every WebSocket message the page sends and receives is recorded through
the browser and compared with what the page shows. Other fake cameras play the same clip
darkened, or one of its frames as a still, to trip the capture-quality gates
(model/quality.py): the page shows their hints live and the reasons of the result.
Screenshots are written to test-output/demo_page/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from contextlib import ExitStack
from fractions import Fraction
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import cv2
import httpx
import numpy as np
import pytest

from model.manifest import read_manifest
from model.quality import REASONS
from service.routes.demo import STATIC_DIR, STATIC_FILES
from tests.helpers import real_frames, write_clip
from tests.service.secured import KEYS, secured_server  # noqa: F401 (fixture)
from tests.service.support import LIMITS, REPO_ROOT, jpeg, wait_until_no_streams

pytestmark = pytest.mark.server  # starts its own server processes

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = REPO_ROOT / "test-output" / "demo_page"
CAMERA_FRAMES = 60  # 2.4 s of the real clip, looped by the fake camera
DARK = 0.15  # the face's grey level times this: ~15 of 255, under the too_dark floor (20)
LIGHT_OFF = 40  # the dimming camera's first frames are dark, the rest lit (2/3 dark)
CHROME_ARGS = [
    "--use-fake-device-for-media-stream",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 60_000  # generous: two shared cores, a browser and a server


def write_y4m(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    """BGR frames -> a YUV4MPEG2 (4:2:0) file, the format Chromium's fake camera plays."""
    h, w = (d - d % 2 for d in frames[0].shape[:2])  # 4:2:0 needs even sides
    rate = Fraction(fps).limit_denominator(1001)
    with open(path, "wb") as f:
        f.write(
            f"YUV4MPEG2 W{w} H{h} F{rate.numerator}:{rate.denominator} Ip A1:1 C420jpeg\n".encode()
        )
        for frame in frames:
            f.write(b"FRAME\n" + cv2.cvtColor(frame[:h, :w], cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


def darken(frames: list[np.ndarray]) -> list[np.ndarray]:
    return [(f * DARK).astype(np.uint8) for f in frames]


@pytest.fixture(scope="module")
def face_clip(real_clip_paths) -> tuple[list[np.ndarray], float]:
    """The first frames of a real face clip, 320 px, and its fps."""
    return real_frames(next(p for p in real_clip_paths if "d11" in p.name), CAMERA_FRAMES)


@pytest.fixture(scope="module")
def camera_files(face_clip, tmp_path_factory) -> dict[str, Path]:
    """Fake-camera files: a real face clip; a faceless (blurred noise) one; the face clip
    with the light off for its first 2/3 (the gates' too_dark, then nothing to fix); and
    its first frame as a still (static_input)."""
    out = tmp_path_factory.mktemp("fake_camera")
    face, fps = face_clip
    rng = np.random.default_rng(0)
    noise = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), np.uint8), (9, 9), 3)
    dimming = darken(face[:LIGHT_OFF]) + face[LIGHT_OFF:]
    return {
        "face": write_y4m(out / "face.y4m", face, fps),
        "noface": write_y4m(out / "noface.y4m", [np.roll(noise, 3 * i, 1) for i in range(20)], 10),
        "dimming": write_y4m(out / "dimming.y4m", dimming, fps),
        "still": write_y4m(out / "still.y4m", [face[0]] * 10, fps),
    }


@pytest.fixture(scope="module")
def dark_mp4(face_clip, tmp_path_factory) -> Path:
    """The face clip filmed in the dark: every frame's face is too dark to judge."""
    face, fps = face_clip
    return write_clip(tmp_path_factory.mktemp("dark_clip") / "dark.mp4", darken(face[:40]), fps)


@pytest.fixture(scope="module")
def playwright():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"Chromium is not installed ({CHROMIUM}); `make system-deps` installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        yield p


def launch(playwright, profile: Path, video: Path, *, fake_ui: bool = True, **context):
    """Chromium with its own fresh profile and a fake camera playing ``video``; fake_ui
    answers the camera prompt with "allow", without it only ``permissions`` decide."""
    args = [*CHROME_ARGS, f"--use-file-for-fake-video-capture={video}"]
    if fake_ui:
        args.insert(0, "--use-fake-ui-for-media-stream")
    return playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        headless=True,
        args=args,
        viewport={"width": 1200, "height": 1300},
        **context,
    )


@pytest.fixture(scope="module")
def camera_browser(playwright, camera_files, tmp_path_factory):
    context = launch(playwright, tmp_path_factory.mktemp("profile"), camera_files["face"])
    yield context
    context.close()


class Recorder:
    """Every WebSocket message of a page, in order: ("sent", payload) / ("received", ...)."""

    def __init__(self, page) -> None:
        self.events: list[tuple[str, str | bytes]] = []
        self.urls: list[str] = []
        page.on("websocket", self._on_socket)

    def _on_socket(self, ws) -> None:
        self.urls.append(ws.url)
        ws.on("framesent", lambda payload: self.events.append(("sent", payload)))
        ws.on("framereceived", lambda payload: self.events.append(("received", payload)))

    def received(self, kind: str) -> list[dict]:
        messages = [json.loads(p) for d, p in self.events if d == "received"]
        return [m for m in messages if m["type"] == kind]

    def max_in_flight(self) -> int:
        """Most frames the page had sent without an answer yet, over the whole stream."""
        in_flight = most = 0
        for direction, payload in self.events:
            if direction == "sent" and isinstance(payload, bytes):
                in_flight += 1
            elif direction == "received":
                m = json.loads(payload)
                answered = m["type"] in ("frame", "dropped") or "index" in m
                in_flight -= answered
            most = max(most, in_flight)
        return most


def attr(page, selector: str, name: str) -> str | None:
    return page.locator(selector).get_attribute(name)


def state_of(page, panel: str) -> str | None:
    return attr(page, f"#{panel}-state", "data-state")


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


# -- the page and its files --------------------------------------------------------------------
def test_page_and_static_files_are_served(server_url):
    page = httpx.get(server_url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'src="static/app.js"' in page.text and 'href="static/style.css"' in page.text
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    # every file the page loads is served with its type, and nothing else is in the folder
    assert {p.name for p in STATIC_DIR.iterdir()} == {"index.html", *STATIC_FILES}
    for name, media_type in STATIC_FILES.items():
        r = httpx.get(f"{server_url}/static/{name}")
        assert r.status_code == 200 and r.headers["content-type"] == media_type
        assert r.content == (STATIC_DIR / name).read_bytes()
    missing = httpx.get(server_url + "/static/demo.py")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


# -- streaming the camera --------------------------------------------------------------------------
@pytest.mark.slow  # a real browser
def test_camera_stream_shows_score_window_and_attention(camera_browser, server_url, tiny_model_dir):
    T = read_manifest(tiny_model_dir).preprocess.window.length
    page = camera_browser.new_page()
    recorder = Recorder(page)
    page.goto(server_url + "/")
    page.wait_for_selector("#model-info[data-state=ready]")
    assert page.input_value("#fps") == "12"  # the default rate
    page.click("#start")
    page.wait_for_selector("#live-score:not([data-score=''])", timeout=WAIT_MS)
    page.wait_for_selector("#attention .bar", timeout=WAIT_MS)
    shot(page, "stream_live")
    page.click("#stop")
    page.wait_for_selector("#stream-state[data-state=ended]", timeout=WAIT_MS)
    page.wait_for_selector("#stream-result:not([hidden])", timeout=WAIT_MS)

    start = json.loads(recorder.events[0][1])
    assert start == {"type": "start", "fps": 12}
    assert recorder.max_in_flight() == 1  # one frame at a time: the page never floods
    sent = [p for d, p in recorder.events if d == "sent" and isinstance(p, bytes)]
    assert sent and all(p.startswith(b"\xff\xd8\xff") for p in sent)  # JPEG frames
    frames = recorder.received("frame")
    scored = [m for m in frames if m["score"] is not None]
    assert scored, "no frame message carried a score"
    assert any(m["box"] is not None for m in frames)
    # what the page shows is the last scored frame's window
    last = scored[-1]
    assert float(attr(page, "#live-score", "data-score")) == pytest.approx(last["score"])
    assert attr(page, "#live-label", "data-label") == last["label"]
    assert page.text_content("#live-score") == f"{last['score']:.3f}"
    bars = page.locator("#attention .bar")
    weights = [float(w) for w in bars.evaluate_all("els => els.map(e => e.dataset.weight)")]
    assert len(weights) == T and sum(weights) == pytest.approx(1.0, abs=1e-6)
    assert weights == pytest.approx(last["attention"])
    # the filmstrip holds the window's encoded frames, each above its bar
    start_i, end_i = last["window"]
    encoded = [m["index"] for m in frames if m["encoded"] and start_i <= m["index"] <= end_i]
    thumbs = page.locator("#filmstrip img").evaluate_all(
        "els => els.map(e => [Number(e.dataset.index), e.naturalWidth])"
    )
    assert [i for i, _ in thumbs] == encoded[-T:]
    assert all(width > 0 for _, width in thumbs)  # real images, decoded by the browser
    bar_index = bars.evaluate_all("els => els.map(e => Number(e.dataset.index))")
    assert bar_index == encoded[-T:]
    (result,) = recorder.received("result")
    assert float(attr(page, "#stream-result", "data-score")) == pytest.approx(result["score"])
    assert attr(page, "#stream-result", "data-label") == result["label"]
    assert page.is_hidden("#stream-reasons") == (not result["reasons"])
    assert items(page, "#live-hints li") == []  # the camera is off: no guidance left
    shot(page, "stream_ended")
    page.close()


@pytest.mark.slow  # a real browser
def test_upload_shows_clip_score_and_timeline(camera_browser, server_url, genuine_mp4, no_face_mp4):
    expected = httpx.post(
        server_url + "/v1/liveness", files={"file": genuine_mp4.read_bytes()}, timeout=120
    ).json()
    page = camera_browser.new_page()
    page.goto(server_url + "/")
    page.set_input_files("#clip", str(genuine_mp4))
    page.click("#upload")
    page.wait_for_selector("#upload-state[data-state=done]", timeout=WAIT_MS)
    shot(page, "upload_result")

    # the same clip scores the same: the page shows the server's numbers
    assert float(attr(page, "#clip-score", "data-score")) == pytest.approx(expected["score"])
    assert attr(page, "#clip-label", "data-label") == expected["label"]
    assert page.is_hidden("#clip-reasons") == (not expected["reasons"])
    windows = page.locator("#timeline line.window").evaluate_all(
        "els => els.map(e => [+e.dataset.start, +e.dataset.end, +e.dataset.score])"
    )
    assert windows == [
        [w["start"], w["end"], pytest.approx(w["score"])] for w in expected["windows"]
    ]
    bars = page.locator("#timeline rect.attention").evaluate_all(
        "els => els.map(e => [+e.dataset.index, +e.dataset.attention])"
    )
    weighted = [[f["index"], f["attention"]] for f in expected["frames"] if f["attention"]]
    assert bars == [[i, pytest.approx(a)] for i, a in weighted]
    faces = page.locator("#timeline rect.face").count()
    assert faces == sum(f["box"] is not None for f in expected["frames"])

    # a clip that cannot be scored: the server's error code and message, in the error state
    page.set_input_files("#clip", str(no_face_mp4))
    page.click("#upload")
    page.wait_for_selector("#upload-state[data-state=error]", timeout=WAIT_MS)
    assert "422 no_face: no face found" in page.text_content("#upload-state")
    assert page.is_hidden("#clip-result")
    page.close()


@pytest.mark.slow  # a real browser
def test_over_capacity_stream_is_shown(camera_browser, server_url):
    from websockets.sync.client import connect

    with httpx.Client(base_url=server_url) as http:
        wait_until_no_streams(http)
    limit = LIMITS["max_streams"]
    url = server_url.replace("http://", "ws://") + "/v1/stream"
    with ExitStack() as open_streams:
        holders = [open_streams.enter_context(connect(url, open_timeout=10)) for _ in range(limit)]
        page = camera_browser.new_page()
        page.goto(server_url + "/")
        page.click("#start")
        deadline = time.monotonic() + WAIT_MS / 1000
        keepalive = jpeg(np.full((48, 64, 3), 128, np.uint8))
        while state_of(page, "stream") != "over-capacity" and time.monotonic() < deadline:
            for ws in holders:  # keep the slots busy past the server's idle timeout
                ws.send(keepalive)
            page.wait_for_timeout(300)
        assert state_of(page, "stream") == "over-capacity", page.text_content("#stream-state")
        assert "close 1013 over_capacity" in page.text_content("#stream-state")
        assert not page.is_disabled("#start")  # the user can try again
        shot(page, "stream_over_capacity")
        page.close()
    with httpx.Client(base_url=server_url) as http:
        wait_until_no_streams(http)


# -- camera permission and faces -------------------------------------------------------------------
@pytest.mark.slow  # a real browser
def test_no_camera_permission_and_no_face_states(playwright, camera_files, server_url, tmp_path):
    # no fake-UI flag: the camera prompt is answered by the context's permissions, none here
    denied = launch(playwright, tmp_path / "denied", camera_files["face"], fake_ui=False)
    try:
        page = denied.new_page()
        page.goto(server_url + "/")
        page.click("#start")
        page.wait_for_selector("#stream-state[data-state=no-permission]", timeout=WAIT_MS)
        assert "No camera permission" in page.text_content("#stream-state")
        assert not page.is_disabled("#start") and page.is_disabled("#stop")
        shot(page, "no_camera_permission")
    finally:
        denied.close()

    faceless = launch(playwright, tmp_path / "noface", camera_files["noface"])
    try:
        page = faceless.new_page()
        recorder = Recorder(page)
        page.goto(server_url + "/")
        page.click("#start")
        page.wait_for_selector("#stream-state[data-state=no-face]", timeout=WAIT_MS)
        page.wait_for_selector("#live-hints li[data-code=no_face]", timeout=WAIT_MS)
        assert items(page, "#live-hints li") == [["no_face", REASONS["no_face"]]]
        shot(page, "no_face")
        page.click("#stop")
        page.wait_for_selector("#stream-state[data-state=ended]", timeout=WAIT_MS)
        # the server found no face in any frame: no score, no result, said so
        assert attr(page, "#live-score", "data-score") == ""
        assert all(m["box"] is None for m in recorder.received("frame"))
        assert "no_face" in page.text_content("#stream-state")
    finally:
        faceless.close()


# -- capture-quality gates: live hints, inconclusive and refused results ----------------------------
def watch_hints(page) -> None:
    """Record every change of the live hint list (its data-codes: the codes shown, space
    separated, "" when none) in window.hintLog, from now on."""
    page.evaluate(
        """() => {
        const list = document.getElementById("live-hints");
        window.hintLog = [];
        new MutationObserver(() => window.hintLog.push(list.dataset.codes))
          .observe(list, { attributes: true, attributeFilter: ["data-codes"] });
    }"""
    )


def items(page, selector: str) -> list[list[str]]:
    """[data-code, text] of each item under ``selector``."""
    return page.locator(selector).evaluate_all(
        "els => els.map(e => [e.dataset.code, e.textContent])"
    )


def frame_codes(recorder: Recorder) -> set[str]:
    """The hint codes of every frame message, as the page writes them in data-codes."""
    return {" ".join(h["code"] for h in m["hints"]) for m in recorder.received("frame")}


def check_reasons(page, selector: str, result: dict) -> None:
    """The page lists the result's reasons, in order, each with its hint."""
    shown = items(page, f"{selector} li")
    assert [code for code, _ in shown] == [r["code"] for r in result["reasons"]]
    for (_, text), r in zip(shown, result["reasons"], strict=True):
        assert text.startswith(r["hint"]) and r["hint"] == REASONS[r["code"]]
    assert attr(page, selector, "data-label") == result["label"]


@pytest.mark.slow  # a real browser
def test_stream_shows_live_hints_and_an_inconclusive_result(
    playwright, camera_files, server_url, dark_mp4, tmp_path
):
    # the camera's light goes off for 2/3 of each 2.4 s loop: "too dark" comes and goes
    browser = launch(playwright, tmp_path / "dimming", camera_files["dimming"])
    try:
        page = browser.new_page()
        recorder = Recorder(page)
        refused: list[str] = []
        page.on(
            "console", lambda m: refused.append(m.text) if "Content Security" in m.text else None
        )
        page.goto(server_url + "/")
        page.wait_for_selector("#model-info[data-state=ready]")
        watch_hints(page)
        page.click("#start")
        page.wait_for_selector("#live-hints li[data-code=too_dark]", timeout=WAIT_MS)
        shown = items(page, "#live-hints li")
        assert shown and all(text == REASONS[code] for code, text in shown), shown
        assert "Too dark" in page.inner_text("#live-hints")  # visible, not only in the DOM
        # a window of dark frames is inconclusive, in the live label and the meter alike
        page.wait_for_selector("#live-label[data-label=inconclusive]", timeout=WAIT_MS)
        assert page.text_content("#live-label") == "inconclusive"
        assert page.text_content("#live-gates") == "enforce"
        shot(page, "stream_hints")
        # the light comes back: the hints are cleared (and come back with the dark)
        page.wait_for_function(
            """() => { const i = hintLog.findIndex(c => c.split(" ").includes("too_dark"));
                       return i >= 0 && hintLog.slice(i).includes(""); }""",
            timeout=WAIT_MS,
        )
        page.click("#stop")
        page.wait_for_selector("#stream-state[data-state=ended]", timeout=WAIT_MS)
        page.wait_for_selector("#stream-result:not([hidden])", timeout=WAIT_MS)
        shot(page, "stream_inconclusive")

        # every hint list the page showed is one the server sent for a frame
        log = page.evaluate("hintLog")
        assert set(log) <= frame_codes(recorder) | {""}, (log, frame_codes(recorder))
        assert items(page, "#live-hints li") == []  # the camera is off: nothing to fix
        (result,) = recorder.received("result")
        assert result["label"] == "inconclusive" and result["gates"] == "enforce"
        assert "too_dark" in [r["code"] for r in result["reasons"]]
        assert attr(page, "#stream-result", "data-label") == "inconclusive"
        assert "Stream result: inconclusive" in page.text_content("#stream-summary")
        assert page.is_visible("#stream-reasons")
        assert "Inconclusive: the capture could not be judged" in page.text_content(
            "#stream-reasons"
        )
        check_reasons(page, "#stream-reasons", result)

        # a clip filmed in the dark: the upload's result is inconclusive with its reasons
        page.set_input_files("#clip", str(dark_mp4))
        with page.expect_response(lambda r: r.url.endswith("/v1/liveness")) as answer:
            page.click("#upload")
        clip = answer.value.json()
        page.wait_for_selector("#upload-state[data-state=done]", timeout=WAIT_MS)
        shot(page, "upload_inconclusive")
        assert clip["label"] == "inconclusive"
        assert "too_dark" in [r["code"] for r in clip["reasons"]]
        assert attr(page, "#clip-label", "data-label") == "inconclusive"
        assert attr(page, "#clip-result", "data-label") == "inconclusive"
        assert "inconclusive — the capture could not be judged" in page.text_content(
            "#upload-state"
        )
        assert page.is_visible("#clip-reasons")
        check_reasons(page, "#clip-reasons", clip)
        assert refused == []  # the new parts of the page live with its CSP
    finally:
        browser.close()


@pytest.mark.slow  # a real browser
def test_stream_of_a_still_image_is_refused_with_its_reason(
    playwright, camera_files, server_url, tmp_path
):
    # one real frame over and over: what a photo on a virtual camera looks like
    browser = launch(playwright, tmp_path / "still", camera_files["still"])
    try:
        page = browser.new_page()
        recorder = Recorder(page)
        page.goto(server_url + "/")
        page.wait_for_selector("#model-info[data-state=ready]")
        page.click("#start")
        page.wait_for_selector("#live-hints li[data-code=static_input]", timeout=WAIT_MS)
        assert REASONS["static_input"] in page.inner_text("#live-hints")
        page.wait_for_selector("#live-label[data-label=spoof]", timeout=WAIT_MS)
        shot(page, "stream_still")
        page.click("#stop")
        page.wait_for_selector("#stream-result:not([hidden])", timeout=WAIT_MS)
        shot(page, "stream_still_refused")

        (result,) = recorder.received("result")
        # spoof whatever the model says (LIVENESS_GATE_INPUT_POLICY's default), and why
        assert result["label"] == "spoof"
        assert [r["code"] for r in result["reasons"]][0] == "static_input"
        assert attr(page, "#stream-result", "data-label") == "spoof"
        assert "no live camera produces" in page.text_content("#stream-reasons")
        if result["model_label"] != "spoof":  # the model was fooled: the page says so
            assert "the model alone said genuine" in page.text_content("#stream-reasons")
        check_reasons(page, "#stream-reasons", result)
    finally:
        browser.close()


# -- a server that requires API keys ---------------------------------------------------------------
@pytest.mark.slow  # a real browser
def test_api_key_for_uploads_and_a_token_for_the_stream(
    camera_browser,
    secured_server,  # noqa: F811 (the fixture imported above)
    genuine_mp4,
):
    key = KEYS["main"]
    page = camera_browser.new_page()
    recorder = Recorder(page)
    requests: list = []
    page.on("request", lambda r: requests.append(r))
    page.goto(secured_server.url + "/")

    # no key: refused, and the page says what to do and opens the key field
    page.set_input_files("#clip", str(genuine_mp4))
    page.click("#upload")
    page.wait_for_selector("#upload-state[data-state=auth]", timeout=WAIT_MS)
    assert "requires an API key" in page.text_content("#upload-state")
    assert page.is_visible("#api-key")
    page.click("#start")
    page.wait_for_selector("#stream-state[data-state=auth]", timeout=WAIT_MS)
    assert "close 1008 unauthorized" in page.text_content("#stream-state")
    shot(page, "api_key_required")

    page.fill("#api-key", "not-a-key-of-this-server")
    page.click("#upload")
    page.wait_for_selector("#upload-state[data-state=auth] >> text=API key was refused")
    assert "401 unauthorized" in page.text_content("#upload-state")

    page.fill("#api-key", key)
    page.click("#upload")
    page.wait_for_selector("#upload-state[data-state=done]", timeout=WAIT_MS)
    upload = [r for r in requests if r.url.endswith("/v1/liveness")][-1]
    assert upload.headers["x-api-key"] == key
    page.click("#start")
    page.wait_for_selector("#live-score:not([data-score=''])", timeout=WAIT_MS)
    page.click("#stop")
    page.wait_for_selector("#stream-state[data-state=ended]", timeout=WAIT_MS)
    assert recorder.received("result")
    # the stream's URL carries a short-lived token made from the key, never the key itself
    token = parse_qs(urlparse(recorder.urls[-1]).query)["token"][0]
    assert token.count(".") == 2 and key not in token
    assert all(key not in r.url for r in requests) and all(key not in u for u in recorder.urls)
    page.close()


def test_docs_render_offline_under_their_csp(camera_browser, server_url):
    """/docs and /redoc render in a real browser from the server's own files: every load
    comes from the server's origin and the Content-Security-Policy blocks nothing they need
    (only ReDoc's footer logo, which it would fetch from Redocly's CDN)."""
    page = camera_browser.new_page()
    loaded: list[str] = []
    refused: list[str] = []
    page.on("response", lambda r: loaded.append(r.url))
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    try:
        page.goto(server_url + "/docs")
        page.wait_for_selector(".swagger-ui .opblock-tag", timeout=WAIT_MS)
        assert "/v1/liveness" in page.inner_text(".swagger-ui")
        page.goto(server_url + "/redoc")
        page.wait_for_selector("h1", timeout=WAIT_MS)
        page.wait_for_function("document.body.innerText.includes('/v1/liveness')", timeout=WAIT_MS)
    finally:
        page.close()
    assert loaded and all(u.startswith((server_url, "blob:", "data:")) for u in loaded), loaded
    assert f"{server_url}/docs/assets/swagger-ui-bundle.js" in loaded
    assert f"{server_url}/docs/assets/redoc.standalone.js" in loaded
    assert all("cdn.redoc.ly/redoc/logo-mini.svg" in m for m in refused), refused
