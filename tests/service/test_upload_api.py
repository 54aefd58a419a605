"""POST /v1/liveness on both transports: results, query parameters, every error path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model.manifest import read_manifest
from tests.helpers import write_clip
from tests.service.support import CLIP_FRAMES, LIMITS, check_result


def post_file(api, path, params=None, name=None, ctype="video/mp4"):
    data = path.read_bytes()
    files = {"file": (name or path.name, data, ctype)}
    return api.http.post("/v1/liveness", files=files, params=params or {})


def error_of(response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["error"]["code"], body["error"]["message"]


def test_genuine_clip_scored_with_frames_windows_and_attention(api, genuine_mp4, tiny_model_dir):
    r = post_file(api, genuine_mp4)
    assert r.status_code == 200, r.text
    body = r.json()
    manifest = read_manifest(tiny_model_dir)
    check_result(body, manifest)
    assert body["frames_decoded"] == CLIP_FRAMES and not body["truncated"]
    assert [f["index"] for f in body["frames"]] == list(range(CLIP_FRAMES))
    assert body["frames"][1]["t"] == pytest.approx(1 / 25, abs=1e-3)
    assert all(f["box"] is not None and f["faces"] >= 1 for f in body["frames"][5:])
    # 40 frames at 25 fps -> 24 encoded at the window's 15 fps -> 3 tiles of T=8
    T = manifest.preprocess.window.length
    assert sum(f["encoded"] for f in body["frames"]) == 24
    assert len(body["windows"]) == 3 and all(len(w["frames"]) == T for w in body["windows"])
    assert "mean of 3 window scores" in body["aggregation"]
    assert r.headers["content-type"] == "application/json"


def test_raw_body_equals_multipart(api, genuine_mp4):
    multipart = post_file(api, genuine_mp4).json()
    for ctype in ("video/mp4", "application/octet-stream"):
        raw = api.http.post(
            "/v1/liveness", content=genuine_mp4.read_bytes(), headers={"content-type": ctype}
        )
        assert raw.status_code == 200, raw.text
        assert raw.json()["score"] == pytest.approx(multipart["score"], abs=1e-6)
        assert [w["frames"] for w in raw.json()["windows"]] == [
            w["frames"] for w in multipart["windows"]
        ]


@pytest.mark.parametrize(
    ("suffix", "fourcc", "ctype"),
    [
        (".avi", "MJPG", "video/x-msvideo"),
        (".webm", "VP80", "video/webm"),
        (".mkv", "MJPG", "video/x-matroska"),
        (".mov", "mp4v", "video/quicktime"),
    ],
)
def test_other_containers(api, genuine_clip, tmp_path, suffix, fourcc, ctype):
    frames, fps = genuine_clip
    path = write_clip(tmp_path / f"clip{suffix}", frames[:24], fps, fourcc)
    r = api.http.post("/v1/liveness", content=path.read_bytes(), headers={"content-type": ctype})
    assert r.status_code == 200, r.text
    assert r.json()["frames_decoded"] == 24 and r.json()["windows"]


def test_synthesised_print_attack_is_scored(api, attack_mp4, genuine_mp4, tiny_model_dir):
    attack = post_file(api, attack_mp4)
    assert attack.status_code == 200, attack.text
    body = attack.json()
    check_result(body, read_manifest(tiny_model_dir))
    assert any(f["box"] for f in body["frames"])  # the printed face is found and tracked
    assert body["score"] != post_file(api, genuine_mp4).json()["score"]


def test_fps_thins_the_video_before_preprocessing(api, genuine_mp4):
    body = post_file(api, genuine_mp4, {"fps": 5}).json()
    indices = [f["index"] for f in body["frames"]]
    assert indices == list(range(0, CLIP_FRAMES, 5))  # 5 of every 25 frames at 25 fps
    assert body["frames_decoded"] == CLIP_FRAMES
    assert all(f["encoded"] for f in body["frames"][1:])  # slower than the window rate
    assert len(body["windows"]) == 1 and body["windows"][0]["frames"] == indices


def test_max_frames_stops_decoding(api, genuine_mp4):
    body = post_file(api, genuine_mp4, {"max_frames": 20}).json()
    assert body["frames_decoded"] == 20 and body["truncated"]
    assert [f["index"] for f in body["frames"]] == list(range(20))
    whole = post_file(api, genuine_mp4, {"max_frames": CLIP_FRAMES}).json()
    assert not whole["truncated"]


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"fps": 0}, "fps"),
        ({"fps": -3}, "fps"),
        ({"fps": 1000}, "fps"),
        ({"fps": "fast"}, "fps"),
        ({"max_frames": 0}, "max_frames"),
        ({"max_frames": LIMITS["max_frames"] + 1}, "max_frames"),
    ],
)
def test_bad_parameters_are_400(api, genuine_mp4, params, name):
    status, code, message = error_of(post_file(api, genuine_mp4, params))
    assert (status, code) == (400, "bad_parameters") and name in message


def test_undecodable_videos_are_422(api, genuine_mp4):
    rng = np.random.default_rng(0)
    data = genuine_mp4.read_bytes()
    for body in (rng.bytes(5000), data[: len(data) // 3], b"RIFF" + bytes(100)):
        r = api.http.post("/v1/liveness", content=body, headers={"content-type": "video/mp4"})
        assert error_of(r)[:2] == (422, "undecodable_video"), r.text


def test_no_face_is_422(api, no_face_mp4):
    status, code, message = error_of(post_file(api, no_face_mp4))
    assert (status, code) == (422, "no_face") and "face" in message


def test_too_few_frames_is_422(api, genuine_clip, tmp_path):
    frames, fps = genuine_clip
    path = write_clip(tmp_path / "short.mp4", frames[:4], fps)
    status, code, message = error_of(post_file(api, path))
    assert (status, code) == (422, "too_few_frames") and "at least" in message


def test_clip_over_the_duration_limit_is_422(api, tmp_path):
    # 7 s at 10 fps: over the 6 s limit; refused when decoding passes it
    frame = np.full((64, 64, 3), 90, np.uint8)
    path = write_clip(tmp_path / "long.avi", [frame] * 70, 10.0, "MJPG")
    status, code, message = error_of(post_file(api, path, name="long.avi"))
    assert (status, code) == (422, "clip_too_long") and "6 s" in message


def test_body_over_the_size_limit_is_413(api):
    too_big = bytes(LIMITS["max_upload_bytes"] + 1)
    r = api.http.post("/v1/liveness", content=too_big, headers={"content-type": "video/mp4"})
    assert error_of(r)[:2] == (413, "payload_too_large")
    r = api.http.post("/v1/liveness", files={"file": ("x.mp4", too_big, "video/mp4")})
    assert error_of(r)[:2] == (413, "payload_too_large")


def test_chunked_body_over_the_limit_is_413(api):
    def chunks():
        for _ in range(LIMITS["max_upload_bytes"] // 65536 + 2):
            yield bytes(65536)

    r = api.http.post("/v1/liveness", content=chunks(), headers={"content-type": "video/mp4"})
    assert error_of(r)[:2] == (413, "payload_too_large")


@pytest.mark.parametrize("ctype", ["text/plain", "image/jpeg", "application/json", None])
def test_unsupported_content_types_are_415(api, genuine_mp4, ctype):
    headers = {"content-type": ctype} if ctype else {}
    content = genuine_mp4.read_bytes() if ctype != "application/json" else json.dumps({})
    r = api.http.post("/v1/liveness", content=content, headers=headers)
    status, code, message = error_of(r)
    assert (status, code) == (415, "unsupported_media_type") and "multipart" in message


def test_malformed_uploads_are_400(api, genuine_mp4):
    data = genuine_mp4.read_bytes()
    r = api.http.post("/v1/liveness", files={"video": ("c.mp4", data, "video/mp4")})
    assert error_of(r)[:2] == (400, "missing_file")
    r = api.http.post("/v1/liveness", content=data, headers={"content-type": "multipart/form-data"})
    assert error_of(r)[:2] == (400, "bad_multipart")
    head = b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="c.mp4"\r\n\r\n'
    r = api.http.post(  # the closing boundary never comes
        "/v1/liveness",
        content=head + data[:5000],
        headers={"content-type": "multipart/form-data; boundary=XyZ"},
    )
    assert error_of(r)[:2] == (400, "bad_multipart")
    r = api.http.post("/v1/liveness", content=b"", headers={"content-type": "video/mp4"})
    assert error_of(r)[:2] == (400, "empty_upload")


def test_unknown_routes_and_methods_answer_json(api):
    assert error_of(api.http.get("/v2/nothing"))[:2] == (404, "not_found")
    assert error_of(api.http.get("/v1/liveness"))[:2] == (405, "method_not_allowed")


def test_frames_larger_than_max_side_are_downscaled(tiny_model_dir, genuine_clip, tmp_path):
    from fastapi.testclient import TestClient

    from tests.service.support import make_app

    frames, fps = genuine_clip  # 256 px; the server's max_side below is 128
    path = write_clip(tmp_path / "clip.avi", frames[:24], fps, "MJPG")
    with TestClient(make_app(tiny_model_dir, max_side=128)) as client:
        body = client.post(
            "/v1/liveness", content=path.read_bytes(), headers={"content-type": "video/avi"}
        )
    assert body.status_code == 200, body.text
    boxes = [f["box"] for f in body.json()["frames"] if f["box"]]
    assert boxes and all(x + w <= 128.5 and y + h <= 128.5 for x, y, w, h in boxes)
