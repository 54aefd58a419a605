"""What the static and looped gates catch: real genuine clips made into the input an
injected photo or a replayed loop gives, through the server's per-frame path and the
gates at the server's settings, as the table of docs/quality.md.

    python scripts/gate_attacks.py --folder ../shared/data/real --every 4

For each clip (every ``--every``-th of the folder), from its first 150 frames, k = the
middle frame (a clip whose frame k shows no face is skipped):
- still: frame k repeated 90 times, as decoded frames (lossless), and through an mp4 made
  by MPEG-4 part 2 (OpenCV's writer), H.264 at crf 23 and at crf 35 (PyAV's libx264);
- loop2: frames k and k+1 alternating, losslessly and through H.264;
- loop2 far: frames k and k+20 alternating, through MPEG-4 part 2;
- loop10: frames k..k+9 repeated 9 times, through H.264.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from collections import Counter
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from model.manifest import DEFAULT_MODEL_DIR, read_manifest  # noqa: E402
from model.preprocess import Preprocessor  # noqa: E402
from model.quality import assess  # noqa: E402
from model.video import VideoReader, write_clip  # noqa: E402
from service.settings import Settings  # noqa: E402


def decode(data: bytes) -> list[np.ndarray]:
    return [f for f, _ in VideoReader(data, max_side=1280, max_frames=1800, threads=1)]


def h264(frames: list[np.ndarray], fps: float, crf: int) -> list[np.ndarray]:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=round(fps))
        h, w = (s - s % 2 for s in frames[0].shape[:2])
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf)}
        for f in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(f[:h, :w]), format="bgr24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return decode(buf.getvalue())


def mpeg4(frames: list[np.ndarray], fps: float) -> list[np.ndarray]:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_clip(Path(tmp) / "clip.mp4", frames, fps)
        return decode(path.read_bytes())


def variants(frames: list[np.ndarray], fps: float) -> dict[str, list[np.ndarray]]:
    k = len(frames) // 2
    still = [frames[k]] * 90
    loop2 = [frames[k], frames[k + 1]] * 45
    return {
        "still, lossless": still,
        "still, MPEG-4 part 2": mpeg4(still, fps),
        "still, H.264 crf 23": h264(still, fps, 23),
        "still, H.264 crf 35": h264(still, fps, 35),
        "loop of 2 neighbouring frames, lossless": loop2,
        "loop of 2 neighbouring frames, H.264": h264(loop2, fps, 23),
        "loop of 2 frames 20 apart, MPEG-4 part 2": mpeg4(
            [frames[k], frames[min(len(frames) - 1, k + 20)]] * 45, fps
        ),
        "loop of 10 frames, H.264": h264(frames[k : k + 10] * 9, fps, 23),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, required=True, help="genuine videos")
    parser.add_argument("--every", type=int, default=4, help="every n-th clip (default 4)")
    args = parser.parse_args()
    settings, preprocess = Settings(), read_manifest(DEFAULT_MODEL_DIR).preprocess
    gates = settings.gate_config()
    paths = sorted(p for p in args.folder.iterdir() if p.suffix in (".mp4", ".avi"))
    caught: Counter = Counter()
    tried: Counter = Counter()
    for path in paths[:: args.every]:
        reader = VideoReader(path.read_bytes(), max_side=1280, max_frames=150, threads=1)
        frames, fps = [f for f, _ in reader], reader.info.fps
        for name, clip in variants(frames, fps).items():
            pre = Preprocessor(preprocess, fps)
            qualities = [pre.process(f, i / fps).quality for i, f in enumerate(clip)]
            if not any(q.face for q in qualities):
                print(f"{path.name}: no face in frame {len(frames) // 2}, skipped", flush=True)
                break
            verdict = assess(qualities, gates)
            tried[name] += 1
            hit = [r for r in verdict.reasons if r in ("static_input", "looped_input")]
            caught[name, hit[0] if hit else "passed"] += 1
            print(f"{path.name}: {name}: {verdict.reasons}", flush=True)
    print("\n| input | clips | static_input | looped_input | passed the gates |")
    print("|---|---:|---:|---:|---:|")
    for name, n in tried.items():
        cells = [caught[name, r] for r in ("static_input", "looped_input", "passed")]
        print(f"| {name} | {n} | " + " | ".join(map(str, cells)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
