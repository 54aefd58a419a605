"""The one scoring path: ONNX model loading, stream scorer, clip function, windows."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from model.manifest import ManifestError
from model.preprocess import FrameSampler, to_network_input
from model.runtime import (
    LivenessModel,
    StreamScorer,
    TooFewFramesError,
    resolve_providers,
    score_clip,
)
from tests.helpers import real_frames


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return LivenessModel(tiny_model_dir, providers="cpu", threads=1)


@pytest.fixture(scope="module")
def clip(real_clip_paths):
    # 70 frames of a real face clip at 25 fps -> ~42 encoded frames at 15 fps.
    path = next(p for p in real_clip_paths if "d11" in p.name)
    frames, fps = real_frames(path, 70)
    return frames, fps


def test_sampler_takes_frames_at_the_window_rate():
    s = FrameSampler(15.0)
    taken = [i for i in range(30) if s.take(i / 30.0)]
    assert taken == list(range(0, 30, 2))
    s = FrameSampler(15.0)
    taken_25 = sum(s.take(i / 25.0) for i in range(250))  # 10 s at 25 fps
    assert abs(taken_25 - 150) <= 1
    s = FrameSampler(15.0)
    assert all(s.take(i / 10.0) for i in range(20))  # slower stream: every frame


def test_normalisation_matches_the_manifest(model):
    crop = np.zeros((64, 64, 3), np.uint8)
    crop[..., 2] = 255  # pure red in BGR
    x = to_network_input(crop, model.manifest.network)
    net = model.manifest.network
    assert x.shape == (1, 3, 64, 64) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, 0], (1 - net.mean[0]) / net.std[0], rtol=1e-6)
    np.testing.assert_allclose(x[0, 2], (0 - net.mean[2]) / net.std[2], rtol=1e-6)
    with pytest.raises(ValueError):
        to_network_input(np.zeros((2, 64, 64), np.float32), net)


def test_clip_function_equals_frame_by_frame_feeding(model, clip):
    frames, fps = clip
    times = [i / fps for i in range(len(frames))]
    clip_result = score_clip(model, zip(frames, times, strict=True), fps)

    scorer = StreamScorer(model, fps)
    streamed = [scorer.push(f, t) for f, t in zip(frames, times, strict=True)]
    stream_result = scorer.finish()

    assert clip_result.score == stream_result.score
    assert [w.score for w in clip_result.windows] == [w.score for w in stream_result.windows]
    assert clip_result.attention == stream_result.attention
    # Every sliding window once full carries a score and weights that sum to 1.
    scored = [r for r in streamed if r.window is not None]
    assert (
        len(scored)
        == sum(r.encoded for r in streamed) - model.manifest.preprocess.window.length + 1
    )
    for r in scored:
        assert len(r.window.attention) == model.manifest.preprocess.window.length
        assert abs(sum(r.window.attention) - 1) < 1e-5
        assert r.window.end == r.index
    assert 0.0 <= clip_result.score <= 1.0
    assert clip_result.label == ("genuine" if clip_result.score >= model.threshold else "spoof")


def test_batched_encoding_across_interleaved_streams_gives_the_same_scores(model, clip):
    """The server's split path (prepare -> one batched encoder call -> complete) for two
    interleaved streams equals each stream scored alone."""
    frames, fps = clip
    alone = score_clip(model, ((f, i / fps) for i, f in enumerate(frames)), fps)
    other_frames = [np.ascontiguousarray(f[:, ::-1]) for f in frames]  # mirrored stream
    alone_other = score_clip(model, ((f, i / fps) for i, f in enumerate(other_frames)), fps)

    a, b = StreamScorer(model, fps), StreamScorer(model, fps)
    for i, (fa, fb) in enumerate(zip(frames, other_frames, strict=True)):
        pa, pb = a.prepare(fa, i / fps), b.prepare(fb, i / fps)
        xs = [s.encoder_input(p) for s, p in ((a, pa), (b, pb))]
        present = [x for x in xs if x is not None]
        feats = iter(model.encode(np.concatenate(present))) if present else iter(())
        a.complete(pa, next(feats) if xs[0] is not None else None)
        b.complete(pb, next(feats) if xs[1] is not None else None)
    ra, rb = a.finish(), b.finish()
    assert ra.score == pytest.approx(alone.score, abs=1e-5)
    assert rb.score == pytest.approx(alone_other.score, abs=1e-5)
    assert ra.score != rb.score


def test_latest_window_is_the_face_tracks_newest_and_none_without_a_face(model, clip):
    frames, fps = clip
    blank = np.zeros_like(frames[0])  # no face: the track is lost, then a new one starts
    feed = [*frames[:40], *[blank] * 20, *frames[40:]]
    scorer, newest, seen = StreamScorer(model, fps), None, []
    for i, frame in enumerate(feed):
        r = scorer.push(frame, i / fps)
        newest = None if r.box is None else (r.window or newest)
        assert scorer.latest_window is newest
        seen.append((r, newest))
    lost = next(i for i, (r, _) in enumerate(seen) if r.box is None)
    assert seen[lost - 1][1] is not None and seen[lost][1] is None  # a window, then no face
    assert any(not r.encoded and w is not None for r, w in seen)  # shared between encodings


def test_clip_windows_tile_each_segment(model, clip):
    frames, fps = clip
    result = score_clip(model, ((f, i / fps) for i, f in enumerate(frames)), fps)
    T = model.manifest.preprocess.window.length
    encoded = [f.index for f in result.frames if f.encoded]
    n = len(encoded)
    assert n >= 2 * T, "fixture clip should give at least two windows"
    expected = -(-n // T)  # ceil: full tiles plus one tail window over the last T frames
    assert len(result.windows) == expected
    assert result.windows[0].frames == encoded[:T]
    assert result.windows[-1].frames == encoded[-T:]
    assert result.score == pytest.approx(np.mean([w.score for w in result.windows]))
    # every encoded frame has exactly one reported weight, from the first window holding it
    assert sorted(result.attention) == encoded
    assert result.attention[encoded[0]] == result.windows[0].attention[0]


def test_short_clip_gets_one_shorter_window_and_too_short_raises(model, clip):
    frames, fps = clip
    window = model.manifest.preprocess.window
    # ~ (min_length + 1) encoded frames: 15 fps sampling of a 25 fps clip
    n = int((window.min_length + 1) * fps / window.fps) + 1
    result = score_clip(model, ((f, i / fps) for i, f in enumerate(frames[:n])), fps)
    assert len(result.windows) == 1
    assert window.min_length <= len(result.windows[0].frames) < window.length
    assert abs(sum(result.windows[0].attention) - 1) < 1e-5
    with pytest.raises(TooFewFramesError, match="too few face frames"):
        score_clip(model, ((f, i / fps) for i, f in enumerate(frames[:3])), fps)


def test_no_face_clip_raises_too_few_frames(model):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 40, (240, 320, 3), dtype=np.uint8) for _ in range(30)]
    with pytest.raises(TooFewFramesError):
        score_clip(model, ((f, i / 25) for i, f in enumerate(frames)), 25.0)


def test_head_attention_sums_to_one_for_any_window_length(model):
    F = model.manifest.feature_dim
    rng = np.random.default_rng(1)
    for B, T in ((1, 1), (2, 8), (3, 5), (1, 40)):
        prob, att = model.head(rng.normal(size=(B, T, F)).astype(np.float32))
        assert prob.shape == (B,) and att.shape == (B, T)
        np.testing.assert_allclose(att.sum(axis=1), 1.0, atol=1e-5)
        assert np.all((prob >= 0) & (prob <= 1))


def test_model_directory_errors(tiny_model_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_model_dir, bad)
    with open(bad / "encoder.onnx", "ab") as f:
        f.write(b"tampered")
    with pytest.raises(ManifestError, match="sha256"):
        LivenessModel(bad, providers="cpu")
    (bad / "encoder.onnx").unlink()
    with pytest.raises(ManifestError, match="missing encoder.onnx"):
        LivenessModel(bad, providers="cpu")
    with pytest.raises(ManifestError, match="no manifest.json"):
        LivenessModel(tmp_path, providers="cpu")
    shutil.rmtree(bad)
    shutil.copytree(tiny_model_dir, bad)
    data = json.loads((bad / "manifest.json").read_text())
    data["threshold"] = 3.0
    (bad / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="threshold"):
        LivenessModel(bad, providers="cpu")


def test_provider_resolution():
    assert resolve_providers("cpu") == ["CPUExecutionProvider"]
    assert resolve_providers("auto")[-1] == "CPUExecutionProvider"
    with pytest.raises(ValueError):
        resolve_providers("tpu")
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(RuntimeError, match="CUDAExecutionProvider"):
            resolve_providers("cuda")
