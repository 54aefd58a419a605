"""Benchmark 1: what each stage of the per-frame path costs, and one stream end to end.

For each backbone (light at 112 px, VGG-16 at 224 px) on the generated 640x480 30 fps
face clip: decode (model/video.py, PyAV), face detection (one full Haar pass) and tracking with the
extended crop (detector every 5th frame), magnification, normalisation, the encoder
(ONNX Runtime vs PyTorch eager, batch 1 and batched) and the temporal head. Then the
whole path for one stream (``VideoReader`` -> ``StreamScorer.push``), and the number of
30 fps streams that cost allows on this machine.

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
from bench.fixtures import DEFAULT_SIZES, ModelSpec, bench_model, face_clip, model_source

CLIP_FPS = 30.0
TARGET_FPS = 150.0  # default light model, one stream: five live 30 fps streams on 2 cores


def _sizes(ctx: BenchContext) -> dict[str, int]:
    return {"light": 64, "vgg16": 32} if ctx.quick else DEFAULT_SIZES


def _stage_samples(model, frames: list[np.ndarray], clip_path, ctx: BenchContext) -> dict:
    """Seconds per call of each stage, on this clip's frames."""
    from model.face import FaceCropper, HaarDetector, crop_face
    from model.magnify import Magnifier
    from model.preprocess import to_network_input
    from model.video import VideoReader

    pre = model.manifest.preprocess
    out: dict[str, list[float]] = {"decode": []}
    t0 = time.perf_counter()
    for _ in VideoReader(clip_path):
        t1 = time.perf_counter()
        out["decode"].append(t1 - t0)
        t0 = t1
    detector = HaarDetector(min_face_fraction=pre.crop.min_face_fraction)
    n_detect = 5 if ctx.quick else 40
    out["detect"] = [_timed(detector.detect, f) for f in frames[:n_detect]]
    cropper = FaceCropper(pre.crop, detector=detector)
    results, out["track"] = [], []
    for f in frames:
        t0 = time.perf_counter()
        results.append(cropper.process(f))
        out["track"].append(time.perf_counter() - t0)
    box = next(r.box for r in results if r.box is not None)
    out["crop"] = [_timed(crop_face, f, box, pre.crop) for f in frames]
    crops = [crop_face(f, box, pre.crop) for f in frames]
    magnifier = Magnifier(pre.magnifier, CLIP_FPS)
    out["magnify"] = [_timed(magnifier.process, c) for c in crops]
    out["normalise"] = [_timed(to_network_input, c, model.manifest.network) for c in crops]
    feats = model.encode(to_network_input(crops[: pre.window.length], model.manifest.network))
    window = np.resize(feats, (pre.window.length, feats.shape[1]))[None]  # [1, T, F]
    out["head"] = time_calls(lambda: model.head(window), 10 if ctx.quick else 50)
    return out


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


def _end_to_end(model, clip_path, n_frames: int) -> tuple[list[float], float]:
    """Per-frame seconds of decode + StreamScorer.push, and total wall seconds."""
    from model.runtime import StreamScorer
    from model.video import VideoReader

    scorer = StreamScorer(model, CLIP_FPS, keep_frames=False)
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
    ("detect", "face detect, one full Haar pass", "(not per frame)"),
    ("track", "detect every 5th + track + crop", "every frame"),
    ("crop", "extended crop + resize", "(part of the row above)"),
    ("magnify", "magnify (Eulerian, causal)", "every frame"),
    ("normalise", "to_network_input", "sampled frames"),
    ("encode", "encode, ONNX Runtime, batch 1", "sampled frames"),
    ("head", "temporal head (LSTM + attention)", "sampled frames"),
]
PER_FRAME_KEYS = ("decode", "track", "magnify", "normalise", "encode", "head")


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
    per_frame, wall = ctx.gated(
        tables["e2e"], f"e2e {label}", lambda: _end_to_end(model, clip, n_e2e)
    )
    _fill(tables, label, model, samples, enc, per_frame, wall, model_source(model_dir))
    if backbone == "light":  # a tiny net at batch 1: does a second ONNX Runtime thread pay?
        single = LivenessModel(model_dir, providers="cpu", threads=1)
        per_frame, wall = ctx.gated(
            tables["e2e"], f"e2e {label} 1 thread", lambda: _end_to_end(single, clip, n_e2e)
        )
        _e2e_row(tables["e2e"], label, model_source(model_dir), 1, per_frame, wall)


def _fill(tables, label, model, samples, enc, per_frame, wall, source) -> None:
    window = model.manifest.preprocess.window
    sampled = min(1.0, window.fps / CLIP_FPS)  # share of frames that reach the encoder
    share = {"decode": 1.0, "track": 1.0, "magnify": 1.0, "normalise": sampled,
             "encode": sampled, "head": sampled}  # fmt: skip
    e2e_ms = 1000.0 * wall / len(per_frame)
    for key, name, runs_on in STAGES:
        s = Summary.of(samples[key])
        per_input = s.mean * share[key] if key in share else None
        tables["stages"].add(label, name, runs_on, str(s), fmt(per_input),
                             ratio(per_input, e2e_ms) if per_input else "–")  # fmt: skip
    accounted = sum(Summary.of(samples[k]).mean * share[k] for k in PER_FRAME_KEYS)
    tables["stages"].add(
        label, "sum of the per-frame rows", "", "", fmt(accounted), ratio(accounted, e2e_ms)
    )
    tables["stages"].add(label, "measured end to end", "every frame", "", fmt(e2e_ms), "1.00×")
    for b, res in enc.items():
        ort, tch, bf = (Summary.of(np.asarray(res[k]) / b) for k in ("ort", "torch", "torch_bf16"))
        tables["encoders"].add(label, b, str(ort), str(tch), str(bf),
                               ratio(tch.median, ort.median), ratio(bf.median, ort.median))  # fmt: skip
    _e2e_row(tables["e2e"], label, source, os.cpu_count(), per_frame, wall)


def _e2e_row(table: Table, label, source, threads, per_frame, wall) -> None:
    fps = len(per_frame) / wall
    table.add(label, source, threads, len(per_frame), str(Summary.of(per_frame)), fmt(fps),
              ratio(fps, TARGET_FPS), f"{fps / CLIP_FPS:.1f}")  # fmt: skip


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
            ["model", "weights", "ORT threads", "frames", "ms per frame, median (p10–p90)", "frames/s", "vs 150 fps target", "30 fps streams (derived)"],
        ),
    }  # fmt: skip
    for backbone, size in _sizes(ctx).items():
        _measure_backbone(ctx, backbone, size, tables)
    tables["stages"].notes += [
        "ms per input frame = mean ms per call x the share of frames the stage runs on (the encoder "
        "gets the frames sampled at the window rate, 15 of 30 fps); share of e2e = that / the "
        "measured end-to-end ms per frame, so the rows show where one frame's time goes",
        "the clip is MPEG-4 part 2 (mp4v): the OpenCV wheels cannot write H.264",
    ]
    tables["encoders"].notes.append(
        "torch eager = model/torch_engine.py TorchEncoder on the CPU (channels-last, BatchNorm "
        "folded); ratios > 1 mean slower than ONNX Runtime"
    )
    tables["e2e"].notes.append(
        "30 fps streams (derived) = frames/s / 30: assumes streams share the cores with the same "
        "per-frame cost and no server overhead; the server benchmark (batching) measures that"
    )
    return list(tables.values())


if __name__ == "__main__":
    from bench.cli import main

    sys.exit(main(["stages", *sys.argv[1:]]))
