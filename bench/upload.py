"""Benchmark 5: the upload path, time to result against time to merely decode the clip.

A 10 s, 640x480, 30 fps face clip (mp4v) is POSTed as the raw body to a real
``liveness serve`` process on loopback (default settings); the client times the request
from sending to the parsed JSON result. The floor is decoding the same bytes from memory
with model/video.py (PyAV) in this process (``read_frames``), measured interleaved with the
requests.
The server's own split of its time (``timing_ms`` of the result) shows where it goes.
"""

from __future__ import annotations

import sys
import time

import httpx
import numpy as np

from bench.common import BenchContext, Summary, Table, fmt, ratio
from bench.fixtures import DEFAULT_SIZES, ModelSpec, bench_model, face_clip
from bench.server import BenchServer

CLIP_SECONDS = 10.0
CLIP_FPS = 30.0


def _decode(data: bytes) -> float:
    from model.video import read_frames

    t0 = time.perf_counter()
    read_frames(data)
    return time.perf_counter() - t0


def _post(url: str, data: bytes) -> tuple[float, dict]:
    t0 = time.perf_counter()
    response = httpx.post(f"{url}/v1/liveness", content=data,
                          headers={"content-type": "video/mp4"}, timeout=600.0)  # fmt: skip
    body = response.json()
    elapsed = time.perf_counter() - t0
    if response.status_code != 200:
        raise RuntimeError(f"POST /v1/liveness answered {response.status_code}: {body}")
    return elapsed, body


def _measure(ctx: BenchContext, model_dir, data: bytes, repeats: int) -> dict:
    decode, post, timings = [], [], []
    with BenchServer(model_dir, ctx.workdir / "server.log") as server:
        _post(server.url, data)  # warm-up: first request loads the detector and the sessions
        for _ in range(repeats):
            decode.append(_decode(data))
            seconds, body = _post(server.url, data)
            post.append(seconds)
            timings.append(body["timing_ms"])
            frames = body["frames_decoded"]
    return {"decode": decode, "post": post, "timings": timings, "frames": frames}


def run(ctx: BenchContext) -> list[Table]:
    seconds = 1.0 if ctx.quick else CLIP_SECONDS
    clip = face_clip(ctx.workdir / f"face-{seconds:g}s.mp4", seconds, CLIP_FPS)
    data = clip.read_bytes()
    table = Table(
        f"Upload: POST /v1/liveness with a {seconds:g} s 640x480 {CLIP_FPS:g} fps clip "
        f"({len(data) / 2**20:.1f} MiB, mp4v)",
        ["model", "runs", "decode only, s", "POST to result, s", "result / decode", "frames/s",
         "server decode s", "server preprocess s", "server inference s"],
    )  # fmt: skip
    sizes = {"light": 64, "vgg16": 32} if ctx.quick else DEFAULT_SIZES
    for backbone, size in sizes.items():
        heavy = backbone == "vgg16" and not ctx.quick
        repeats = 1 if heavy or ctx.quick else 3
        model_dir = bench_model(ModelSpec(backbone, size), ctx.workdir)
        r = ctx.gated(
            table, f"upload {backbone}", lambda d=model_dir, n=repeats: _measure(ctx, d, data, n)
        )
        dec, post = Summary.of(r["decode"]), Summary.of(r["post"])
        split = {
            k: np.median([t[k] for t in r["timings"]]) / 1000.0
            for k in ("decode", "preprocess", "inference")
        }
        table.add(f"{backbone} {size}", repeats, fmt(dec.median / 1000), fmt(post.median / 1000),
                  ratio(post.median, dec.median), fmt(r["frames"] / (post.median / 1000)),
                  fmt(split["decode"]), fmt(split["preprocess"]), fmt(split["inference"]))  # fmt: skip
    table.notes += [
        "medians over the runs, after one warm-up request; decode only = PyAV decoding the "
        "same bytes from memory in the client process (the floor)",
        "server decode/preprocess/inference = the result's timing_ms (thread time summed per "
        "stage; inference includes waiting for the batched encoder)",
    ]
    return [table]


if __name__ == "__main__":
    from bench.cli import main

    sys.exit(main(["upload", *sys.argv[1:]]))
