"""Benchmark 1: what each stage of the per-frame path costs, and one stream end to end.

For each backbone (light at 112 px, VGG-16 at 224 px) on the generated 640x480 30 fps
face clip: decode (model/video.py, PyAV), face detection (one full pass of each detector, Haar and
BlazeFace) and tracking with the extended crop (the model's detector pass every k-th
frame) with each detector, magnification, the capture-quality gates, normalisation, the encoder (ONNX Runtime vs
PyTorch eager, batch 1 and batched) and the temporal head. Then the whole path for one
stream (``VideoReader`` -> ``StreamScorer.push``) with each detector (the one the model
names, and the other in its place, as ``LIVENESS_DETECTOR_OVERRIDE`` serves it), and
the number of 30 fps streams that cost allows on this machine.

Settings as the server runs them: OpenCV on 1 thread, ONNX Runtime and torch on all
cores. The encoder sees only the frames sampled at the window rate (15 of 30 fps).
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from bench.common import (
    BenchContext,
    Summary,
    Table,
    fmt,
    interleaved,
    opencv_threads,
    ratio,
    time_calls,
)
from bench.fixtures import (
    DEFAULT_SIZES,
    REAL_TIME,
    ModelSpec,
    bench_model,
    face_clip,
    model_source,
    without_motion,
)
from model.config import reads_motion

CLIP_FPS = 30.0
TARGET_FPS = 300.0  # light model, one stream: ten live 30 fps streams on 2 cores
DETECTORS = ("haar", "blazeface")  # each measured beside the other in every run


def _sizes(ctx: BenchContext) -> dict[str, int]:
    return {"light": 64, "vgg16": 32} if ctx.quick else DEFAULT_SIZES


def _stage_samples(model, frames: list[np.ndarray], clip_path, ctx: BenchContext) -> dict:
    """Seconds per call of each stage, on this clip's frames."""
    from model.face import FaceCropper, crop_face
    from model.gates import GateConfig
    from model.magnify import Magnifier
    from model.preprocess import to_network_input
    from model.quality import QualityMeter, assess
    from model.video import VideoReader

    pre = model.manifest.preprocess
    out: dict[str, list[float]] = {"decode": []}
    t0 = time.perf_counter()
    for _ in VideoReader(clip_path):
        t1 = time.perf_counter()
        out["decode"].append(t1 - t0)
        t0 = t1
    n_detect = 5 if ctx.quick else 40
    results = []
    for name in DETECTORS:
        detector = _detector(pre.crop, name)
        out[f"detect_{name}"] = [_timed(detector.detect, f) for f in frames[:n_detect]]
        cropper = FaceCropper(pre.crop, detector=_detector(pre.crop, name))
        out[f"track_{name}"] = []
        for f in frames:
            t0 = time.perf_counter()
            results.append(cropper.process(f))
            out[f"track_{name}"].append(time.perf_counter() - t0)
    box = next(r.box for r in results if r.box is not None)
    out["crop"] = [_timed(crop_face, f, box, pre.crop) for f in frames]
    crops = [crop_face(f, box, pre.crop) for f in frames]
    magnifier = Magnifier(pre.magnifier, CLIP_FPS)
    out["magnify"] = [_timed(magnifier.process, c) for c in crops]
    out["normalise"] = [_timed(to_network_input, c, model.manifest.network) for c in crops]
    meter = QualityMeter(pre.crop.margin)
    keypoints = next((r.keypoints for r in results if r.keypoints is not None), None)
    qualities = [meter.measure(crops[0], box.as_list(), 1, 0.0, keypoints)]
    for c in crops[1:]:
        t0 = time.perf_counter()
        qualities.append(meter.measure(c, box.as_list(), 1, 0.0, keypoints))
        out.setdefault("gates", []).append(time.perf_counter() - t0)
    from model.face import crop_square
    from model.motion import MotionMeter

    motion = MotionMeter(pre.crop.margin)
    height, width = frames[0].shape[:2]
    square = crop_square(box, width, height, pre.crop)
    motion.measure(crops[0], square, CLIP_FPS)
    out["motion"] = [_timed(motion.measure, c, square, CLIP_FPS) for c in crops[1:]]
    span = qualities[-32:]  # about the frames one window spans at 30 fps
    out["gates_window"] = [_timed(assess, span, GateConfig()) for _ in range(len(frames))]
    feats = model.encode(to_network_input(crops[: pre.window.length], model.manifest.network))
    window = np.resize(feats, (pre.window.length, feats.shape[1]))  # [T, F]
    if reads_motion(model.manifest.network):  # the head reads each frame's motion after it
        from model.motion import EMPTY

        window = np.concatenate([window, np.tile(EMPTY, (len(window), 1))], axis=1)
    window = window[None]  # [1, T, head input]
    out["head"] = time_calls(lambda: model.head(window), 10 if ctx.quick else 50)
    return out


def _detector(crop, name: str):
    """The detector ``name`` with the model's crop settings (as the server builds it)."""
    from model.config import replace
    from model.face import make_detector

    return make_detector(replace(crop, detector=name))


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def _encoder_samples(model, model_dir, crops_x: np.ndarray, batch: int, ctx: BenchContext) -> dict:
    """ONNX Runtime vs torch eager (fp32, bf16) at one batch size, interleaved."""
    from model.torch_engine import TorchEncoder

    torch_fp32 = TorchEncoder(model_dir, device="cpu", dtype="fp32")
    torch_bf16 = TorchEncoder(model_dir, device="cpu", dtype="bf16")
    x = np.resize(crops_x, (batch, *crops_x.shape[1:])).astype(np.float32)
    heavy = model.manifest.network.backbone == "vgg16" and not ctx.quick
    repeats = (3 if heavy else 20) if batch == 1 else (2 if heavy else 8)
    return interleaved(
        {
            "ort": lambda: model.encode(x),
            "torch": lambda: torch_fp32.encode(x),
            "torch_bf16": lambda: torch_bf16.encode(x),
        },
        repeats=2 if ctx.quick else repeats,
    )


def _end_to_end(model, clip_path, n_frames: int, detector: str) -> tuple[list[float], float]:
    """Per-frame seconds of decode + StreamScorer.push, and total wall seconds."""
    from model.runtime import StreamScorer
    from model.video import VideoReader

    det = _detector(model.manifest.preprocess.crop, detector)
    scorer = StreamScorer(model, CLIP_FPS, detector=det, keep_frames=False)
    per_frame, start = [], time.perf_counter()
    t0 = start
    for i, (frame, t) in enumerate(VideoReader(clip_path)):
        if i >= n_frames:
            break
        scorer.push(frame, t)
        t1 = time.perf_counter()
        per_frame.append(t1 - t0)
        t0 = t1
    return per_frame, time.perf_counter() - start


STAGES = [  # (key, label, runs on)
    ("decode", "decode 640x480 mp4v (PyAV)", "every frame"),
    ("detect_haar", "face detect, one full Haar pass", "(not per frame)"),
    ("detect_blazeface", "face detect, one full BlazeFace pass", "(not per frame)"),
    ("track_haar", "Haar every k-th + track + crop", "every frame"),
    ("track_blazeface", "BlazeFace every k-th + track + crop", "every frame"),
    ("crop", "extended crop + resize", "(part of the row above)"),
    ("magnify", "magnify (Eulerian, causal)", "every frame"),
    ("gates", "capture-quality gates: the frame's measures", "every frame"),
    ("gates_window", "gates: a window's verdict (a stream's answer)", "(server, per answer)"),
    ("motion", "motion descriptor (optical flow, model/motion.py)", "every frame (motion models)"),
    ("normalise", "to_network_input", "sampled frames"),
    ("encode", "encode, ONNX Runtime, batch 1", "sampled frames"),
    ("head", "temporal head (LSTM + attention)", "sampled frames"),
]
PER_FRAME_KEYS = ("decode", "magnify", "gates", "motion", "normalise", "encode", "head")  # + track


def _measure_backbone(
    ctx: BenchContext, backbone: str, size: int, tables: dict[str, Table]
) -> None:
    from model.face import FaceCropper
    from model.preprocess import to_network_input
    from model.runtime import LivenessModel
    from model.video import read_frames

    model_dir = bench_model(ModelSpec(backbone, size), ctx.workdir)
    model = LivenessModel(model_dir, providers="cpu", threads=os.cpu_count())
    seconds = 1.0 if ctx.quick else 10.0
    clip = face_clip(ctx.workdir / f"face-{seconds:g}s.mp4", seconds, CLIP_FPS)
    frames, _, _ = read_frames(clip, max_frames=30 if ctx.quick else 120)
    label = f"{backbone} {size}"
    samples = ctx.gated(
        tables["stages"], f"stages {label}", lambda: _stage_samples(model, frames, clip, ctx)
    )
    cropper = FaceCropper(model.manifest.preprocess.crop)
    crops = [r.crop for r in map(cropper.process, frames[:16]) if r.crop is not None]
    crops_x = to_network_input(crops, model.manifest.network)  # [n, 3, S, S]
    heavy = backbone == "vgg16" and not ctx.quick
    batches = (1, 4) if ctx.quick else ((1, 8) if heavy else (1, 16))
    enc = {}
    for b in batches:
        enc[b] = ctx.gated(tables["encoders"], f"encode {label} b{b}",
                           lambda b=b: _encoder_samples(model, model_dir, crops_x, b, ctx))  # fmt: skip
    samples["encode"] = enc[1]["ort"]
    n_e2e = 30 if ctx.quick else (40 if heavy else 300)
    own = model.manifest.preprocess.crop.detector
    # the model's own detector first (the baseline), then the other in its place
    detectors = [own, *(d for d in DETECTORS if d != own)] if backbone in REAL_TIME else [own]
    e2e = {}
    for det in detectors:
        e2e[det] = ctx.gated(tables["e2e"], f"e2e {label} {det}",
                             lambda det=det: _end_to_end(model, clip, n_e2e, det))  # fmt: skip
    _fill(tables, label, model, samples, enc, e2e[own], own)
    source = model_source(model_dir)
    for det in detectors:
        _e2e_row(tables["e2e"], label, source, det, own, os.cpu_count(), e2e[det], e2e[own])
    if backbone in REAL_TIME:  # a small net at batch 1: does a second ONNX Runtime thread pay?
        single = LivenessModel(model_dir, providers="cpu", threads=1)
        one = {}
        for det in detectors:
            one[det] = ctx.gated(tables["e2e"], f"e2e {label} {det} 1 thread",
                                 lambda det=det: _end_to_end(single, clip, n_e2e, det))  # fmt: skip
        for det in detectors:
            _e2e_row(tables["e2e"], label, source, det, own, 1, one[det], one[own])


def _measure_motion_cost(ctx: BenchContext, tables: dict[str, Table]) -> None:
    """The embedded default model end to end against the same network and preprocessing
    without the motion descriptor, interleaved in one run (when the default reads motion)."""
    from model.manifest import DEFAULT_MODEL_DIR, read_manifest
    from model.runtime import LivenessModel

    if not DEFAULT_MODEL_DIR.is_dir():
        return
    manifest = read_manifest(DEFAULT_MODEL_DIR, verify_files=False)
    if not reads_motion(manifest.network):
        return
    seconds = 1.0 if ctx.quick else 10.0
    clip = face_clip(ctx.workdir / f"face-{seconds:g}s.mp4", seconds, CLIP_FPS)
    n = 30 if ctx.quick else 300
    own = manifest.preprocess.crop.detector
    models = {
        "embedded default (reads motion)": DEFAULT_MODEL_DIR,
        "the same without motion (random weights)": without_motion(DEFAULT_MODEL_DIR, ctx.workdir),
    }
    runs: dict[str, list] = {name: [] for name in models}
    loaded = {
        k: LivenessModel(d, providers="cpu", threads=os.cpu_count()) for k, d in models.items()
    }
    for _ in range(1 if ctx.quick else 3):  # interleaved: a load on the machine hits both
        for name, model in loaded.items():
            runs[name].append(ctx.gated(tables["motion"], f"e2e motion {name}",
                                        lambda model=model: _end_to_end(model, clip, n, own)))  # fmt: skip
    base = None
    for name, results in runs.items():
        per_frame = [x for r in results for x in r[0]]
        fps = len(per_frame) / sum(r[1] for r in results)
        base = base or fps
        tables["motion"].add(name, len(per_frame), str(Summary.of(per_frame)), fmt(fps),
                             ratio(fps, base))  # fmt: skip


def _fill(tables, label, model, samples, enc, e2e, own: str) -> None:
    per_frame, wall = e2e
    window = model.manifest.preprocess.window
    sampled = min(1.0, window.fps / CLIP_FPS)  # share of frames that reach the encoder
    motion_model = reads_motion(model.manifest.network)
    share = {"decode": 1.0, "track_haar": 1.0, "track_blazeface": 1.0, "magnify": 1.0,
             "gates": 1.0, "motion": 1.0 if motion_model else 0.0, "normalise": sampled,
             "encode": sampled, "head": sampled}  # fmt: skip
    e2e_ms = 1000.0 * wall / len(per_frame)
    for key, name, runs_on in STAGES:
        s = Summary.of(samples[key])
        per_input = s.mean * share[key] if share.get(key) else None
        tables["stages"].add(label, name, runs_on, str(s), fmt(per_input),
                             ratio(per_input, e2e_ms) if per_input else "–")  # fmt: skip
    others = sum(Summary.of(samples[k]).mean * share[k] for k in PER_FRAME_KEYS)
    for det in DETECTORS:
        accounted = others + Summary.of(samples[f"track_{det}"]).mean
        tables["stages"].add(label, f"sum of the per-frame rows, {det}", "", "", fmt(accounted),
                             ratio(accounted, e2e_ms))  # fmt: skip
    tables["stages"].add(label, f"measured end to end, {own} (the model's)", "every frame", "",
                         fmt(e2e_ms), "1.00×")  # fmt: skip
    for b, res in enc.items():
        ort, tch, bf = (Summary.of(np.asarray(res[k]) / b) for k in ("ort", "torch", "torch_bf16"))
        tables["encoders"].add(label, b, str(ort), str(tch), str(bf),
                               ratio(tch.median, ort.median), ratio(bf.median, ort.median))  # fmt: skip


def _e2e_row(table: Table, label, source, det, own, threads, e2e, baseline) -> None:
    per_frame, wall = e2e
    fps, base = len(per_frame) / wall, len(baseline[0]) / baseline[1]
    name = det if det == own else f"{det} (override)"
    table.add(label, source, name, threads, len(per_frame), str(Summary.of(per_frame)),
              fmt(fps), ratio(fps, base), ratio(fps, TARGET_FPS), f"{fps / CLIP_FPS:.1f}")  # fmt: skip


def run(ctx: BenchContext) -> list[Table]:
    import torch

    threads = torch.get_num_threads()
    if not ctx.quick:  # torch on every core, as ONNX Runtime; quick runs keep the caller's
        torch.set_num_threads(os.cpu_count() or 1)
    try:
        with opencv_threads(1):  # as the server runs: small images gain nothing from threads
            return _run(ctx)
    finally:
        torch.set_num_threads(threads)


def _run(ctx: BenchContext) -> list[Table]:
    tables = {
        "stages": Table(
            "Per-frame stage costs (one stream, 640x480 at 30 fps)",
            ["model", "stage", "runs on", "ms per call, median (p10–p90)", "ms per input frame", "share of e2e"],
        ),
        "encoders": Table(
            "Encoder engines on the CPU: ms per frame",
            ["model", "batch", "ONNX Runtime", "torch eager fp32", "torch eager bf16", "torch fp32 / ORT", "torch bf16 / ORT"],
        ),
        "e2e": Table(
            "One stream end to end (decode -> face -> magnify -> encode -> head)",
            ["model", "weights", "detector", "ORT threads", "frames", "ms per frame, median (p10–p90)", "frames/s", "vs the model's detector", "vs 300 fps target", "30 fps streams (derived)"],
        ),
        "motion": Table(
            "What reading motion costs: the embedded default model end to end",
            ["model", "frames", "ms per frame, median (p10–p90)", "frames/s", "vs the default"],
        ),
    }  # fmt: skip
    for backbone, size in _sizes(ctx).items():
        _measure_backbone(ctx, backbone, size, tables)
    _measure_motion_cost(ctx, tables)
    tables["stages"].notes += [
        "ms per input frame = mean ms per call x the share of frames the stage runs on (the encoder "
        "gets the frames sampled at the window rate, 15 of 30 fps); share of e2e = that / the "
        "measured end-to-end ms per frame, so the rows show where one frame's time goes",
        "the clip is MPEG-4 part 2 (mp4v): the OpenCV wheels cannot write H.264",
        "both detectors run with the model's crop settings (detector pass every detect_every-th "
        "frame, on a held track around it); the sums add each one's track row to the other "
        "per-frame rows; share of e2e is against the end-to-end run with the model's detector",
        "gates: model/quality.py's measures of one frame (64 px face patch, 32 px thumbnail, the "
        "loop match against the last 48 frames), part of every frame's preprocessing; a "
        "window's verdict (model/quality.py assess over the 32 frames a window spans) runs "
        "once per stream answer in the server, not in the end-to-end row",
    ]
    tables["motion"].notes.append(
        "the embedded default model (its network reads the optical-flow descriptor of "
        "every frame, model/motion.py) and the same network and preprocessing reading no "
        "motion, each on the same clip three times, interleaved; empty when the default model "
        "reads no motion"
    )
    tables["encoders"].notes.append(
        "torch eager = model/torch_engine.py TorchEncoder on the CPU (channels-last, BatchNorm "
        "folded); ratios > 1 mean slower than ONNX Runtime"
    )
    tables["e2e"].notes.append(
        "override: the model's crop settings with the other detector in its place, as "
        "LIVENESS_DETECTOR_OVERRIDE serves it (a model trained on Haar crops sees BlazeFace's "
        "boxes, grown to Haar's geometry); vs the model's detector = frames/s over that row's"
    )
    tables["e2e"].notes.append(
        "30 fps streams (derived) = frames/s / 30: assumes streams share the cores with the same "
        "per-frame cost and no server overhead; the server benchmark (batching) measures that"
    )
    return list(tables.values())


if __name__ == "__main__":
    from bench.cli import main

    sys.exit(main(["stages", *sys.argv[1:]]))
