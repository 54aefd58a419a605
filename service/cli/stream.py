"""Stream a camera or a video file to a running liveness server over its WebSocket.

Frames are sent as JPEG (or PNG with --png) at the source's pace (a video file plays in
real time unless --no-pace), live scores are printed as they come back, and after the
last frame the final result. Exit status: 0 genuine, 1 spoof, 2 error, 3 inconclusive. A server with
API keys gets the key (sent as X-API-Key) from the environment, as for `liveness check`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

from service.cli.client import (
    DEFAULT_URL,
    EXIT_ERROR,
    add_key_argument,
    exit_status,
    key_headers,
    summary_lines,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--camera", type=int, metavar="N", help="camera device index")
    source.add_argument("--video", metavar="FILE", help="video file")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"server URL (default {DEFAULT_URL})")
    parser.add_argument(
        "--fps", type=float, help="frames per second to send (default and most: the source's)"
    )
    parser.add_argument("--seconds", type=float, help="stop after this many seconds of frames")
    parser.add_argument("--png", action="store_true", help="send lossless PNG instead of JPEG")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    parser.add_argument("--no-pace", action="store_true", help="send a file as fast as possible")
    parser.add_argument("--quiet", action="store_true", help="print only the final result")
    parser.add_argument(
        "--json", action="store_true", help="print only the final result, as the server's JSON"
    )
    add_key_argument(parser)


def stream_url(url: str) -> str:
    """http(s)://host:port[/v1/stream] -> ws(s)://host:port/v1/stream."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/") or ""
    if not path.endswith("/v1/stream"):
        path += "/v1/stream"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def frames_from(args: argparse.Namespace) -> tuple[Iterator, float]:
    """(iterator of (frame, t), source fps) for the camera or the video file."""
    import cv2

    from model.video import VideoReader

    if args.video is not None:
        reader = VideoReader(args.video)
        return iter(reader), reader.info.fps
    cap = cv2.VideoCapture(args.camera)
    if not cap.isOpened():
        raise OSError(f"camera {args.camera} cannot be opened")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0

    def read() -> Iterator:
        start = time.monotonic()
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    return
                yield frame, time.monotonic() - start
        finally:
            cap.release()

    return read(), fps


class Printer:
    """The receiving side: prints live scores, keeps the final result (runs in a thread)."""

    def __init__(self, ws, quiet: bool) -> None:
        self.ws, self.quiet = ws, quiet
        self.result: dict | None = None
        self.error: str | None = None

    def __call__(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            for raw in self.ws:
                self.handle(json.loads(raw))
        except ConnectionClosed as exc:
            if exc.rcvd is not None and exc.rcvd.code != 1000 and self.error is None:
                self.error = f"closed {exc.rcvd.code}: {exc.rcvd.reason}"

    def handle(self, m: dict) -> None:
        if m["type"] == "frame" and not self.quiet:
            score = "   -  " if m["score"] is None else f"{m['score']:.3f} {m['label']}"
            face = "face" if m["box"] else "no face"
            hints = "".join(f"  [{h['code']}] {h['hint']}" for h in m["hints"])
            print(
                f"frame {m['index']:>5} t={m['t']:7.2f}s {face:<7} score {score:<18} "
                f"dropped {m['dropped']:>3} latency {m['latency_ms']:.1f} ms{hints}",
                flush=True,
            )
        elif m["type"] == "error":
            print(f"server: {m['code']}: {m['message']}", file=sys.stderr, flush=True)
            if m["code"] != "bad_frame":
                self.error = f"{m['code']}: {m['message']}"
        elif m["type"] == "result":
            self.result = m


def _send_frames(ws, frames: Iterator, fps: float, args: argparse.Namespace) -> int:
    import cv2

    from model.preprocess import FrameSampler

    sampler = FrameSampler(fps)
    ext, params = (".png", []) if args.png else (".jpg", [cv2.IMWRITE_JPEG_QUALITY, args.quality])
    start, sent = time.monotonic(), 0
    for frame, t in frames:
        if args.seconds is not None and t > args.seconds:
            break
        if not sampler.take(t):
            continue
        if args.video is not None and not args.no_pace:
            time.sleep(max(0.0, start + sent / fps - time.monotonic()))
        ok, buf = cv2.imencode(ext, frame, params)
        if ok:
            ws.send(buf.tobytes())
            sent += 1
    return sent


def run(args: argparse.Namespace) -> int:
    from websockets.exceptions import WebSocketException
    from websockets.sync.client import connect

    url = stream_url(args.url)
    try:
        frames, source_fps = frames_from(args)
        fps = min(args.fps or source_fps, source_fps)
        with connect(
            url, additional_headers=key_headers(args), max_size=None, open_timeout=10
        ) as ws:
            ws.send(json.dumps({"type": "start", "fps": fps}))
            printer = Printer(ws, args.quiet or args.json)
            receiver = threading.Thread(target=printer, daemon=True)
            receiver.start()
            with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends the stream normally
                _send_frames(ws, frames, fps, args)
            ws.send(json.dumps({"type": "end"}))
            receiver.join()
    except (OSError, ValueError, WebSocketException) as exc:  # ValueError: VideoDecodeError
        print(f"liveness stream: {url}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if printer.result is None:
        print(
            f"liveness stream: no result ({printer.error or 'connection closed'})", file=sys.stderr
        )
        return EXIT_ERROR
    if args.json:
        print(json.dumps(printer.result, indent=2))
    else:
        name = args.video or f"camera {args.camera}"
        print("\n".join(summary_lines(printer.result, name)))
    return exit_status(printer.result)
