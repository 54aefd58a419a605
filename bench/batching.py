"""Benchmark 3: encoder micro-batching in the real server, on and off.

A ``liveness serve`` process on loopback; N concurrent WebSocket streams send JPEG
frames of the 640x480 face clip in a closed loop (send a frame, wait for its answer,
send the next), declaring 15 fps, the window rate, so every frame is encoded. Batching
on = the default settings (batch_max_size 16, batch_max_wait_ms 2); off =
batch_max_size 1. The light model runs with each face detector (the one its manifest
names, then the other through LIVENESS_DETECTOR_OVERRIDE): with the cheaper detector less
of the cores goes to preprocessing, and more to the batched encoder. Throughput is
answered frames per second over the measuring period;
latency is each frame's round trip (send to answer). The client runs on the same
machine and cores as the server. For VGG-16 the bare encoder's throughput (ONNX Runtime,
batch 16, in this process with the server stopped) is the baseline the server is held
to: target >= 0.9x.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import numpy as np

from bench.common import BenchContext, Summary, Table, fmt, ratio, time_calls
from bench.fixtures import (
    DEFAULT_SIZES,
    REAL_TIME,
    ModelSpec,
    bench_model,
    face_frames,
    jpeg_frames,
)
from bench.server import BenchServer

STREAM_FPS = 15.0  # declared by every stream: the window rate, so each frame is encoded
TARGET_GAIN = 1.5  # throughput with batching / without, at 16 streams
TARGET_VGG_SHARE = 0.9  # VGG-16 server throughput / bare encoder throughput


async def _stream(url: str, frames: list[bytes], offset: int, warm_until: float, stop_at: float,
                  latencies: list[float]) -> None:  # fmt: skip
    import websockets

    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "start", "fps": STREAM_FPS}))
        ready = json.loads(await ws.recv())
        if ready.get("type") != "ready":
            raise RuntimeError(f"the server did not accept the stream: {ready}")
        i = offset
        while (t0 := time.perf_counter()) < stop_at:
            await ws.send(frames[i % len(frames)])
            i += 1
            answer = json.loads(await ws.recv())
            if answer.get("type") != "frame":
                raise RuntimeError(f"expected a frame answer, got {answer}")
            if t0 >= warm_until:
                latencies.append(time.perf_counter() - t0)


def _drive(url: str, frames: list[bytes], streams: int, warm_s: float, measure_s: float) -> dict:
    """Run ``streams`` closed-loop clients; throughput and latencies of the measuring period."""
    latencies: list[float] = []

    async def main() -> None:
        start = time.perf_counter()
        warm_until, stop_at = start + warm_s, start + warm_s + measure_s
        step = max(1, len(frames) // streams)
        await asyncio.gather(*(_stream(url, frames, k * step, warm_until, stop_at, latencies)
                               for k in range(streams)))  # fmt: skip

    asyncio.run(main())
    if not latencies:
        raise RuntimeError("no frame was answered within the measuring period")
    p50, p95 = np.percentile(np.asarray(latencies) * 1000.0, [50, 95])
    return {"fps": len(latencies) / measure_s, "p50": float(p50), "p95": float(p95)}


def _serve_and_drive(ctx, model_dir, frames, counts, batch: int, warm_s, measure_s,
                     detector: str) -> dict:  # fmt: skip
    log = ctx.workdir / "server.log"
    with BenchServer(model_dir, log, batch_max_size=batch, max_stream_fps=1000,
                     max_streams=max(counts) + 4, detector_override=detector) as server:  # fmt: skip
        out = {}
        for n in counts:
            before = (server.metric("liveness_encoder_batch_size_sum"),
                      server.metric("liveness_encoder_batch_size_count"))  # fmt: skip
            out[n] = _drive(server.ws_url, frames, n, warm_s, measure_s)
            rows = server.metric("liveness_encoder_batch_size_sum") - before[0]
            calls = server.metric("liveness_encoder_batch_size_count") - before[1]
            out[n]["mean_batch"] = rows / calls if calls else float("nan")
        return out


def _bare_encoder_fps(model_dir, batch: int, repeats: int) -> float:
    from model.runtime import LivenessModel

    model = LivenessModel(model_dir, providers="cpu", threads=os.cpu_count())
    s = model.manifest.network.input_size
    x = np.random.default_rng(0).normal(size=(batch, 3, s, s)).astype(np.float32)
    return batch / Summary.of(time_calls(lambda: model.encode(x), repeats)).median * 1000.0


def _measure(
    ctx: BenchContext, table: Table, backbone: str, size: int, frames: list[bytes]
) -> None:
    heavy = backbone == "vgg16" and not ctx.quick
    counts = (1, 4) if ctx.quick else (1, 4, 16)
    warm_s, measure_s = (0.3, 0.7) if ctx.quick else ((6.0, 12.0) if heavy else (2.0, 6.0))
    model_dir = bench_model(ModelSpec(backbone, size), ctx.workdir)
    label = f"{backbone} {size}"
    from model.manifest import read_manifest

    own = read_manifest(model_dir, verify_files=False).preprocess.crop.detector
    others = [d for d in ("haar", "blazeface") if d != own] if backbone in REAL_TIME else []
    bare = ctx.gated(table, f"bare encoder {label}",
                     lambda: _bare_encoder_fps(model_dir, 16, 2 if heavy or ctx.quick else 10))  # fmt: skip
    for det in (own, *others):
        results = {}
        for batch in (16, 1):
            results[batch] = ctx.gated(table, f"server {label} {det} batch {batch}",
                                       lambda b=batch, d=det: _serve_and_drive(ctx, model_dir, frames, counts, b, warm_s, measure_s, d))  # fmt: skip
        name_det = det if det == own else f"{det} (override)"
        for n in counts:
            off = results[1][n]
            for name, r in (("on (16)", results[16][n]), ("off (1)", off)):
                table.add(label, name_det, n, name, fmt(r["fps"]), fmt(r["mean_batch"]),
                          fmt(r["p50"]), fmt(r["p95"]), ratio(r["fps"], off["fps"]),
                          ratio(r["fps"], bare))  # fmt: skip
    table.notes.append(
        f"{label}: bare encoder (ONNX Runtime, batch 16, all cores) {fmt(bare)} frames/s"
    )


def run(ctx: BenchContext) -> list[Table]:
    table = Table(
        "Micro-batching in the server: N closed-loop WebSocket streams",
        ["model", "detector", "streams", "batching", "frames/s", "mean batch", "p50 ms", "p95 ms", "vs batching off", "vs bare encoder"],
    )  # fmt: skip
    frames = jpeg_frames(face_frames(30 if ctx.quick else 150))
    sizes = {"light": 64, "vgg16": 32} if ctx.quick else DEFAULT_SIZES
    for backbone, size in sizes.items():
        _measure(ctx, table, backbone, size, frames)
    table.notes += [
        f"targets: batching on >= {TARGET_GAIN}x off at 16 streams; VGG-16 server throughput "
        f">= {TARGET_VGG_SHARE}x the bare encoder",
        f"streams declare {STREAM_FPS:g} fps (the window rate), so every frame is encoded; "
        "frames are 640x480 JPEG (quality 80); client and server share the machine's cores",
    ]
    return [table]


if __name__ == "__main__":
    from bench.cli import main

    sys.exit(main(["batching", *sys.argv[1:]]))
