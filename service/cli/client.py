"""Send a video clip to a running liveness server and print its verdict.

Prints the label, score and threshold, then one line per window of the clip score.
Exit status: 0 genuine, 1 spoof, 2 error (server unreachable, HTTP error, bad file),
3 inconclusive (the capture could not be judged: the reasons and hints are printed).
A server with API keys gets the key from the environment variable named by --key-env
(LIVENESS_API_KEY by default), never from a flag (flags show in the process list).
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import sys
from pathlib import Path

EXIT_GENUINE, EXIT_SPOOF, EXIT_ERROR, EXIT_INCONCLUSIVE = 0, 1, 2, 3
DEFAULT_URL = "http://127.0.0.1:8000"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("clip", help="video file (mp4, webm, avi, mov, mkv)")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"server URL (default {DEFAULT_URL})")
    parser.add_argument("--fps", type=float, help="process at most this many frames per second")
    parser.add_argument("--max-frames", type=int, help="decode at most this many frames")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds (default 300)")
    parser.add_argument("--json", action="store_true", help="print the server's JSON answer")
    add_key_argument(parser)


def add_key_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key-env",
        default="LIVENESS_API_KEY",
        help="environment variable holding the API key, sent as X-API-Key "
        "(default LIVENESS_API_KEY; unset: no key)",
    )


def key_headers(args: argparse.Namespace) -> dict[str, str]:
    key = os.environ.get(args.key_env)
    return {"X-API-Key": key} if key else {}


def exit_status(result: dict) -> int:
    label = result.get("label")
    if label == "inconclusive":
        return EXIT_INCONCLUSIVE
    return EXIT_GENUINE if label == "genuine" else EXIT_SPOOF


def summary_lines(result: dict, name: str) -> list[str]:
    """The verdict and a per-window table, as printed by `check` and `stream`."""
    model = result["model"]
    encoded = sum(1 for f in result["frames"] if f["encoded"])
    lines = [
        f"{name}: {result['label'].upper()} (score {result['score']:.3f}, "
        f"threshold {result['threshold']:.3f}; the model alone: {result['model_label']})",
        *(f"  {r['code']} ({r['share']:.0%}): {r['hint']}" for r in result["reasons"]),
        f"model {model['name']} ({model['backbone']}, {model['hash']}); "
        f"{result['frames_decoded']} frames, {len(result['frames'])} processed, "
        f"{encoded} encoded" + (f", {result['dropped']} dropped" if "dropped" in result else ""),
        f"{len(result['windows'])} windows: {result['aggregation']}",
        f"  {'frames':<11}  {'n':>3}  {'score':>6}  most attended frame",
    ]
    for w in result["windows"]:
        top = max(range(len(w["attention"])), key=w["attention"].__getitem__)
        lines.append(
            f"  {w['start']:>5}-{w['end']:<5}  {len(w['frames']):>3}  {w['score']:>6.3f}  "
            f"{w['frames'][top]} ({w['attention'][top]:.3f})"
        )
    t = result["timing_ms"]
    lines.append(
        f"timing: decode {t['decode']:.0f} ms, preprocess {t['preprocess']:.0f} ms, "
        f"inference {t['inference']:.0f} ms, total {t['total']:.0f} ms"
    )
    return lines


def error_text(response) -> str:
    try:
        err = response.json()["error"]
        return f"HTTP {response.status_code} {err['code']}: {err['message']}"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:200]}"


def run(args: argparse.Namespace) -> int:
    import httpx

    path = Path(args.clip)
    if not path.is_file():
        print(f"liveness check: {path}: no such file", file=sys.stderr)
        return EXIT_ERROR
    ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    params = {k: v for k, v in (("fps", args.fps), ("max_frames", args.max_frames)) if v}
    url = args.url.rstrip("/") + "/v1/liveness"
    try:
        with open(path, "rb") as f:
            response = httpx.post(
                url,
                files={"file": (path.name, f, ctype)},
                params=params,
                headers=key_headers(args),
                timeout=args.timeout,
            )
    except httpx.HTTPError as exc:
        print(f"liveness check: cannot reach {url}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if response.status_code != 200:
        print(f"liveness check: {error_text(response)}", file=sys.stderr)
        return EXIT_ERROR
    result = response.json()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print("\n".join(summary_lines(result, path.name)))
    return exit_status(result)
