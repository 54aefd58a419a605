"""Load and soak: N WebSocket streams at a frame rate plus M upload loops, for S seconds.

    liveness bench load --streams 16 --seconds 60            # starts its own server
    liveness bench load --url http://127.0.0.1:8000 --key K   # a running one

(``python -m bench.load`` runs the same.)

Each stream sends JPEG frames of a face clip (bench/fixtures.py, 640x480) at ``--fps``
like a camera (never waiting for answers), then ``end``, and waits for its result. Each
upload loop posts a short mp4 of the same clip again and again. Reported: frame latency
(frame sent -> its answer, client side) p50/p95/p99, frames sent / scored / dropped
(busy: a newer frame replaced it; rate: over the stream's limit), errors (any close but
1000, a stream without a result, an upload not answered 200, an exception), upload
latency, and the server's RSS: idle, after the warm-up (the first sixth of the run, at
most 10 s) and at the end; growth = end vs warm-up, the leak signal. With no --url the
server is ``liveness serve`` on a free loopback port (RSS from /proc), else RSS comes
from /metrics (process_resident_memory_bytes). Everything is bounded: the run stops by
itself at S seconds plus a grace for the last results. Exit status 0: no error and a
result for every stream.

With ``--bombs B`` the run ends with one more figure: B uploads of the largest video the
server accepts (frames of ``max_frame_pixels``, as many as ``max_video_pixels`` allows,
grey) are sent at once, and while they are in flight the good clip is uploaded and a
stream opened again and again. Reported: the good clip's upload time with the bombs in
flight against its idle time (a ratio; not asserted), the same for a stream's ``ready``,
the bombs' answers and the server's peak RSS meanwhile. ``--bomb-side`` and
``--bomb-frames`` make smaller bombs (for a quick run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

FINAL_TIMEOUT_S = 60.0  # after `end`: the most a stream waits for its result
CLIP_SECONDS = 3.0  # length of the uploaded clip


@dataclass
class Tally:
    sent: int = 0
    scored: int = 0  # "frame" answers
    dropped: dict[str, int] = field(default_factory=lambda: {"busy": 0, "rate": 0})
    latencies: list[float] = field(default_factory=list)  # s, frame sent -> answered
    results: int = 0
    uploads: int = 0
    upload_latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


# -- streams -------------------------------------------------------------------------------
async def _answers(ws, sent_at: dict[int, float], tally: Tally) -> str:
    """Read answers until the result or a close; returns how the stream ended."""
    from websockets.exceptions import ConnectionClosed

    try:
        async for raw in ws:
            m = json.loads(raw)
            kind = m["type"]
            if kind == "frame":
                tally.scored += 1
                tally.latencies.append(time.perf_counter() - sent_at.pop(m["index"]))
            elif kind == "dropped":
                tally.dropped[m["reason"]] += 1
                sent_at.pop(m["index"], None)
            elif kind == "result":
                tally.results += 1
                return "result"
            elif kind == "error":
                tally.errors.append(f"stream error {m['code']}")
                if "index" not in m:
                    return m["code"]
    except ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd else 1006
        tally.errors.append(f"stream closed {code}")
        return f"closed {code}"
    return "closed"


async def run_stream(url: str, headers: dict, frames: list[bytes], fps: float, stop: float, tally: Tally) -> None:  # fmt: skip
    from websockets.asyncio.client import connect

    try:
        async with connect(url, additional_headers=headers, max_size=None, open_timeout=30) as ws:
            await ws.send(json.dumps({"type": "start", "fps": fps}))
            ready = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if ready["type"] != "ready":
                tally.errors.append(f"stream refused: {ready.get('code')}")
                return
            sent_at: dict[int, float] = {}
            reader = asyncio.create_task(_answers(ws, sent_at, tally))
            start, i = time.perf_counter(), 0
            while (now := time.perf_counter()) < stop and not reader.done():
                await asyncio.sleep(max(0.0, start + i / fps - now))  # a camera's pace
                sent_at[i] = time.perf_counter()
                await ws.send(frames[i % len(frames)])
                tally.sent += 1
                i += 1
            if not reader.done():
                await ws.send(json.dumps({"type": "end"}))
            ended = await asyncio.wait_for(reader, FINAL_TIMEOUT_S)
            if ended != "result":
                tally.errors.append(f"stream ended without a result: {ended}")
    except (OSError, TimeoutError) as exc:
        tally.errors.append(f"stream {type(exc).__name__}: {exc}")
    except Exception as exc:  # a websockets protocol error, an unexpected message
        tally.errors.append(f"stream {type(exc).__name__}: {exc}")


async def run_uploads(base: str, headers: dict, clip: bytes, stop: float, tally: Tally) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        while time.perf_counter() < stop:
            started = time.perf_counter()
            try:
                r = await http.post(
                    "/v1/liveness", content=clip, headers={**headers, "content-type": "video/mp4"}
                )
            except httpx.HTTPError as exc:
                tally.errors.append(f"upload {type(exc).__name__}")
                continue
            if r.status_code == 200:
                tally.uploads += 1
                tally.upload_latencies.append(time.perf_counter() - started)
            else:
                tally.errors.append(f"upload {r.status_code}")


# -- bombs: the largest accepted uploads in flight --------------------------------------------
def largest_accepted() -> tuple[int, int]:
    """(side, frames) of the costliest upload the server's default limits accept."""
    import math

    from service.settings import Settings

    s = Settings()
    side = math.isqrt(s.max_frame_pixels) // 16 * 16
    return side, min(s.max_frames, s.max_video_pixels // (side * side))


def write_bomb(path: Path, side: int, frames: int) -> bytes:
    """A grey side x side mp4 of ``frames`` frames (tiny on disk, costly to decode)."""
    from model.video import write_clip

    def grey() -> Iterator[np.ndarray]:
        frame = np.full((side, side, 3), 120, np.uint8)
        for i in range(frames):
            frame[:16, :16] = i % 256  # not quite still: every frame is coded
            yield frame

    return write_clip(path, grey(), 30.0).read_bytes()


async def timed_upload(http: httpx.AsyncClient, headers: dict, clip: bytes) -> tuple[float, int]:
    started = time.perf_counter()
    r = await http.post("/v1/liveness", content=clip, headers={**headers, "content-type": "video/mp4"})  # fmt: skip
    return time.perf_counter() - started, r.status_code


async def ready_time(ws_url: str, headers: dict) -> float:
    from websockets.asyncio.client import connect

    started = time.perf_counter()
    async with connect(ws_url, additional_headers=headers, open_timeout=60) as ws:
        await ws.send(json.dumps({"type": "start", "fps": 15}))
        ready = json.loads(await asyncio.wait_for(ws.recv(), 120))
        if ready["type"] != "ready":
            raise RuntimeError(f"stream refused: {ready}")
        return time.perf_counter() - started


async def bombs_figure(args, server: Server, clip: bytes, bomb: bytes) -> dict:
    headers = {"X-API-Key": args.key} if args.key else {}
    ws_url = server.url.replace("http", "ws", 1) + "/v1/stream"
    n = args.bomb_samples
    async with httpx.AsyncClient(base_url=server.url, timeout=600) as http:
        await timed_upload(http, headers, clip)  # warm
        idle = [await timed_upload(http, headers, clip) for _ in range(n)]
        idle_ready = [await ready_time(ws_url, headers) for _ in range(n)]
        rss_idle = server.rss_mib()
        peak = [rss_idle or 0.0]
        bombs = [asyncio.create_task(timed_upload(http, headers, bomb)) for _ in range(args.bombs)]

        async def sample() -> None:
            while not all(b.done() for b in bombs):
                peak.append(server.rss_mib() or 0.0)
                await asyncio.sleep(0.2)

        sampler = asyncio.create_task(sample())
        await asyncio.sleep(1.0)  # the bombs' bodies are in and decoding has begun
        loaded, loaded_ready = [], []
        for _ in range(n):
            if all(b.done() for b in bombs):
                break
            loaded.append(await timed_upload(http, headers, clip))
            loaded_ready.append(await ready_time(ws_url, headers))
        overlapped = not all(b.done() for b in bombs)
        answers = await asyncio.gather(*bombs)
        await sampler
    med = lambda xs: float(np.median(xs)) if xs else None  # noqa: E731
    idle_s, loaded_s = med([t for t, _ in idle]), med([t for t, _ in loaded])
    ready_idle, ready_loaded = med(idle_ready), med(loaded_ready)
    return {
        "bombs": args.bombs,
        "bomb": f"{args.bomb_side}x{args.bomb_side} x {args.bomb_frames} frames, {len(bomb)} bytes",
        "bomb_answers": sorted(str(code) for _, code in answers),
        "bomb_seconds": sorted(round(t, 1) for t, _ in answers),
        "good_statuses": sorted({code for _, code in idle + loaded}),
        "good_upload_idle_s": idle_s,
        "good_upload_loaded_s": loaded_s,
        "good_upload_loaded_s_all": [round(t, 3) for t, _ in loaded],
        "upload_ratio": loaded_s / idle_s if idle_s and loaded_s else None,
        "ready_idle_s": ready_idle,
        "ready_loaded_s": ready_loaded,
        "ready_ratio": ready_loaded / ready_idle if ready_idle and ready_loaded else None,
        "all_samples_overlapped": overlapped,
        "rss_idle_mib": rss_idle,
        "rss_peak_mib": max(peak),
    }


def bombs_markdown(b: dict) -> str:
    rows = [
        ("bombs in flight", f"{b['bombs']} x {b['bomb']}; answered {', '.join(b['bomb_answers'])} after {b['bomb_seconds']} s"),
        ("good clip upload idle / with bombs", f"{fmt(b['good_upload_idle_s'], 2)} / {fmt(b['good_upload_loaded_s'], 2)} s: {fmt(b['upload_ratio'], 2)}x"),
        ("stream ready idle / with bombs", f"{fmt(b['ready_idle_s'], 3)} / {fmt(b['ready_loaded_s'], 3)} s: {fmt(b['ready_ratio'], 2)}x"),
        ("server RSS idle / peak with bombs", f"{fmt(b['rss_idle_mib'])} / {fmt(b['rss_peak_mib'])} MiB"),
    ]  # fmt: skip
    return "| bombs | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


# -- the server ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``liveness serve`` on loopback (started here), or one given by URL."""

    def __init__(self, url: str | None, model_dir: Path | None, streams: int, log: Path) -> None:
        self.proc: subprocess.Popen | None = None
        if url:
            self.url = url.rstrip("/")
            return
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "LIVENESS_MAX_STREAMS": str(max(16, streams))}
        cmd = [sys.executable, "-m", "liveness", "serve", "--port", str(port)]
        cmd += ["--model-dir", str(model_dir), "--log-level", "warning"]
        with open(log, "w") as out:
            self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=out)
        deadline = time.monotonic() + 180
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.3)

    def _ready(self) -> bool:
        try:
            return httpx.get(self.url + "/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def rss_mib(self) -> float | None:
        if self.proc is not None:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        for line in httpx.get(self.url + "/metrics", timeout=10).text.splitlines():
            if line.startswith("process_resident_memory_bytes "):
                return float(line.split()[1]) / 2**20
        return None

    def stop(self) -> None:
        from bench.server import stop_process

        if self.proc is not None:
            stop_process(self.proc)


# -- the run ---------------------------------------------------------------------------------
async def drive(args, server: Server, frames: list[bytes], clip: bytes) -> tuple[Tally, dict]:
    headers = {"X-API-Key": args.key} if args.key else {}
    ws_url = server.url.replace("http", "ws", 1) + "/v1/stream"
    tally = Tally()
    rss = {"idle": server.rss_mib()}
    stop = time.perf_counter() + args.seconds
    tasks = [
        run_stream(ws_url, headers, frames, args.fps, stop, tally) for _ in range(args.streams)
    ]
    tasks += [run_uploads(server.url, headers, clip, stop, tally) for _ in range(args.uploads)]

    async def sample_rss() -> None:
        await asyncio.sleep(min(10.0, args.seconds / 6))
        rss["warm"] = server.rss_mib()

    sampler = asyncio.create_task(sample_rss())
    await asyncio.wait_for(asyncio.gather(*tasks), args.seconds + FINAL_TIMEOUT_S + 60)
    await sampler
    rss["end"] = server.rss_mib()
    return tally, rss


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) * 1000 if values else None


def summary(args, tally: Tally, rss: dict, foreign: float | None, model: str) -> dict:
    growth = (rss["end"] / rss["warm"] - 1) * 100 if rss.get("warm") and rss.get("end") else None
    return {
        "model": model,
        "streams": args.streams,
        "fps": args.fps,
        "uploads": args.uploads,
        "seconds": args.seconds,
        "frames_sent": tally.sent,
        "frames_scored": tally.scored,
        "dropped_busy": tally.dropped["busy"],
        "dropped_rate": tally.dropped["rate"],
        "frame_latency_ms": {q: percentile(tally.latencies, q) for q in (50, 95, 99)},
        "stream_results": tally.results,
        "uploads_done": tally.uploads,
        "upload_latency_ms": {q: percentile(tally.upload_latencies, q) for q in (50, 95)},
        "errors": len(tally.errors),
        "error_kinds": sorted(set(tally.errors)),
        "rss_mib": rss,
        "rss_growth_pct": growth,
        "foreign_cores": foreign,
    }


def fmt(x: float | None, digits: int = 0) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def markdown(s: dict) -> str:
    lat, up, rss = s["frame_latency_ms"], s["upload_latency_ms"], s["rss_mib"]
    rows = [
        ("load", f"{s['streams']} streams x {s['fps']:g} fps + {s['uploads']} upload loops, {s['seconds']:g} s"),
        ("model", s["model"]),
        ("frames sent / scored", f"{s['frames_sent']} / {s['frames_scored']}"),
        ("dropped (busy / rate)", f"{s['dropped_busy']} / {s['dropped_rate']}"),
        ("frame latency p50 / p95 / p99", f"{fmt(lat[50])} / {fmt(lat[95])} / {fmt(lat[99])} ms"),
        ("stream results", f"{s['stream_results']} of {s['streams']}"),
        ("uploads scored, latency p50 / p95", f"{s['uploads_done']}, {fmt(up[50])} / {fmt(up[95])} ms"),
        ("errors", f"{s['errors']} {', '.join(s['error_kinds'])}".strip()),
        ("server RSS idle / warm / end", f"{fmt(rss.get('idle'))} / {fmt(rss.get('warm'))} / {fmt(rss.get('end'))} MiB"),
        ("RSS growth (end vs warm)", f"{fmt(s['rss_growth_pct'], 1)} %"),
        ("other processes' CPU", f"{fmt(s['foreign_cores'], 2)} cores"),
    ]  # fmt: skip
    return "| measure | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="liveness bench load", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="a running server (default: start one on loopback)")
    p.add_argument("--model-dir", type=Path, help="model to serve (default: the embedded one)")  # fmt: skip
    p.add_argument("--key", help="API key sent as X-API-Key (for a server with keys)")
    p.add_argument("--streams", type=int, default=16, help="concurrent streams (default 16)")
    p.add_argument("--fps", type=float, default=15.0, help="frames per second per stream (15)")
    p.add_argument("--uploads", type=int, default=1, help="concurrent upload loops (default 1)")
    p.add_argument("--seconds", type=float, default=60.0, help="length of the run (default 60)")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    side, frames = largest_accepted()
    p.add_argument("--bombs", type=int, default=0, help="then: largest accepted uploads in flight meanwhile (default 0: none)")  # fmt: skip
    p.add_argument("--bomb-side", type=int, default=side, help=f"bomb frame side, px (default {side}: the largest accepted)")  # fmt: skip
    p.add_argument("--bomb-frames", type=int, default=frames, help=f"bomb frames (default {frames}: the most accepted)")  # fmt: skip
    p.add_argument("--bomb-samples", type=int, default=5, help="good uploads timed, idle and under bombs (default 5)")  # fmt: skip
    args = p.parse_args(argv)
    if args.streams < 0 or args.uploads < 0 or args.seconds <= 0 or args.fps <= 0:
        p.error("--streams/--uploads must be >= 0, --seconds and --fps > 0")

    from bench.common import CpuMeter
    from bench.fixtures import (
        ModelSpec,
        bench_model,
        face_frames,
        jpeg_frames,
        model_source,
    )
    from model.video import write_clip

    with tempfile.TemporaryDirectory(prefix="liveness-load-") as tmp:
        work = Path(tmp)
        model_dir = args.model_dir or (
            None if args.url else bench_model(ModelSpec("mobilenet_v2", 112), work)
        )
        model = "the server's" if args.url else f"{model_dir.name} ({model_source(model_dir)})"
        images = face_frames(int(CLIP_SECONDS * 30), 30.0)
        frames = jpeg_frames(images)
        clip = write_clip(work / "clip.mp4", images, 30.0).read_bytes()
        server = Server(args.url, model_dir, args.streams, work / "server.log")
        meter = CpuMeter()
        if server.proc is not None:
            meter.track(server.proc.pid)
        bombs = None
        try:
            meter.start()
            tally, rss = asyncio.run(drive(args, server, frames, clip))
            foreign = meter.stop()
            if args.bombs > 0:
                bomb = write_bomb(work / "bomb.mp4", args.bomb_side, args.bomb_frames)
                bombs = asyncio.run(bombs_figure(args, server, clip, bomb))
        finally:
            server.stop()
    s = summary(args, tally, rss, foreign, model)
    print(markdown(s))
    if bombs is not None:
        s["bombs"] = bombs
        print()
        print(bombs_markdown(bombs))
    if args.json:
        args.json.write_text(json.dumps(s, indent=2))
    good = bombs is None or bombs["good_statuses"] == [200]
    return 0 if s["errors"] == 0 and s["stream_results"] == args.streams and good else 1


if __name__ == "__main__":
    sys.exit(main())
