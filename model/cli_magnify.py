"""Magnify a clip's face crops and write the before/after XT-slice picture (paper Fig. 2).

The clip goes through a model's own preprocessing (model/preprocess.py, with the crop and
magnifier settings of its manifest; the embedded default model unless --model names
another): the face is tracked and cropped as for the network, then magnified by the
streaming Eulerian magnifier, every frame. For one
horizontal line through the crop, that line of every frame is stacked over time: x
across, time down, the original on the left and the magnified on the right, under the
crops of the middle frame with the line marked. Motion in the magnifier's band (blinks,
head sway, breathing) shows as larger wiggles on the right. Frames without a face are
black rows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HEADER_PX = 24  # label strip above the panels
GAP_PX = 8  # between the before and after halves, and between the XY and XT panels
BACKGROUND = 40  # grey level of the margins
LINE_BGR = (0, 0, 255)  # the slice's line drawn on the XY crops


def xt_regions(n_frames: int, side: int, scale: int = 2) -> dict[str, tuple[slice, slice]]:
    """Where each panel lies in the picture of `xt_slice_image`: name -> (rows, cols).

    Names: before_xy, after_xy (the middle frame's crop, side*scale square) and
    before_xt, after_xt (the slices, n_frames*scale tall, side*scale wide).
    """
    width = side * scale
    xy_rows = slice(HEADER_PX, HEADER_PX + width)
    xt_top = HEADER_PX + width + GAP_PX
    xt_rows = slice(xt_top, xt_top + n_frames * scale)
    before_cols, after_cols = slice(0, width), slice(width + GAP_PX, 2 * width + GAP_PX)
    return {
        "before_xy": (xy_rows, before_cols),
        "after_xy": (xy_rows, after_cols),
        "before_xt": (xt_rows, before_cols),
        "after_xt": (xt_rows, after_cols),
    }


def xt_slice_image(
    before: np.ndarray,
    after: np.ndarray,
    row: int,
    *,
    labels: tuple[str, str] = ("before", "after"),
    scale: int = 2,
) -> np.ndarray:
    """The before/after XT picture: uint8 BGR [24 + S*k + 8 + N*k, 2*S*k + 8, 3] (k = scale).

    before, after: uint8 [N, S, S, 3] BGR crops, frame by frame; row: the slice's line,
    0 <= row < S. Each frame's line becomes one row of the XT panels (nearest-neighbour
    enlarged by `scale`), so time runs down and x across; see `xt_regions`.
    """
    import cv2

    if before.shape != after.shape or before.ndim != 4 or before.shape[3] != 3:
        raise ValueError(
            f"before and after must be equal [N, S, S, 3] stacks, got {before.shape} "
            f"and {after.shape}"
        )
    n_frames, side = before.shape[0], before.shape[2]
    if not 0 <= row < before.shape[1]:
        raise ValueError(f"row {row} is outside the {before.shape[1]} px crop")
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    regions = xt_regions(n_frames, side, scale)
    height = regions["before_xt"][0].stop
    picture = np.full((height, regions["after_xt"][1].stop, 3), BACKGROUND, np.uint8)
    for name, frames, label in (("before", before, labels[0]), ("after", after, labels[1])):
        xy = _enlarge(frames[n_frames // 2], scale).copy()
        y_line = row * scale + scale // 2
        cv2.line(xy, (0, y_line), (xy.shape[1] - 1, y_line), LINE_BGR, 1)
        picture[regions[f"{name}_xy"]] = xy
        picture[regions[f"{name}_xt"]] = _enlarge(frames[:, row], scale)  # [N, S, 3] XT
        cols = regions[f"{name}_xt"][1]
        cv2.putText(
            picture, label, (cols.start + 4, HEADER_PX - 7), cv2.FONT_HERSHEY_SIMPLEX,
            0.45, (255, 255, 255), 1, cv2.LINE_AA,
        )  # fmt: skip
    return picture


def _enlarge(image: np.ndarray, scale: int) -> np.ndarray:
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def temporal_variation(xt: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Mean |row_t - row_(t-1)| of an XT slice [N, W, 3], grey levels per frame.

    valid: bool [N], frames that hold a face; only pairs of valid frames count.
    """
    steps = np.abs(np.diff(xt.astype(np.float32), axis=0)).mean(axis=(1, 2))  # [N-1]
    if valid is not None:
        steps = steps[valid[1:] & valid[:-1]]
    return float(steps.mean()) if steps.size else 0.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clip", type=Path, help="video file showing a face")
    parser.add_argument(
        "--image", required=True, type=Path, metavar="FILE.png", help="XT-slice picture to write"
    )
    parser.add_argument("--out", dest="out_folder", help=argparse.SUPPRESS)  # see _run
    parser.add_argument(
        "--model",
        type=Path,
        metavar="DIR",
        help="model whose manifest gives the crop and magnifier (default: the embedded one)",
    )
    parser.add_argument(
        "--row",
        type=float,
        default=0.42,
        metavar="FRACTION",
        help="sliced line in the crop, 0 = top, 1 = bottom (default 0.42: eye level)",
    )
    parser.add_argument(
        "--frames", type=int, default=150, metavar="N", help="frames to read (default 150)"
    )
    parser.add_argument(
        "--alpha", type=float, metavar="A", help="magnification factor (default: the model's)"
    )
    parser.add_argument("--fps", type=float, help="frame rate to assume (default: the container's)")
    parser.add_argument(
        "--video",
        type=Path,
        metavar="FILE.mp4",
        help="also write the crops, before | after side by side, as a video",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


class MagnifyCliError(ValueError):
    """Bad arguments or an unusable clip, with the reason."""


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except MagnifyCliError as exc:
        print(f"liveness magnify: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    import cv2

    from model.manifest import DEFAULT_MODEL_DIR, ManifestError, read_manifest

    if not 0 <= args.row < 1:
        raise MagnifyCliError(f"--row must be in [0, 1), got {args.row}")
    if args.frames < 2:
        raise MagnifyCliError(f"--frames must be at least 2, got {args.frames}")
    if args.fps is not None and not args.fps > 0:
        raise MagnifyCliError(f"--fps must be positive, got {args.fps}")
    if args.out_folder is not None:
        raise MagnifyCliError("--out names a folder in liveness commands; the picture is --image")
    if args.image.suffix.lower() != ".png":
        raise MagnifyCliError(f"--image must be a .png file, got {args.image}")
    try:
        preprocess = read_manifest(args.model or DEFAULT_MODEL_DIR, verify_files=False).preprocess
    except ManifestError as exc:
        raise MagnifyCliError(f"--model: {exc}") from None
    magnifier = replace(preprocess.magnifier, enabled=True)
    if args.alpha is not None:
        if not args.alpha >= 0:
            raise MagnifyCliError(f"--alpha must be >= 0, got {args.alpha}")
        magnifier = replace(magnifier, alpha=args.alpha)
    preprocess = replace(preprocess, magnifier=magnifier)
    before, after, valid, fps = _magnified_crops(args, preprocess)
    side = preprocess.crop.input_size
    row = int(args.row * side)
    labels = ("before", f"after (alpha {magnifier.alpha:g})")
    picture = xt_slice_image(before, after, row, labels=labels)
    args.image.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(args.image), picture):
        raise MagnifyCliError(f"could not write {args.image}")
    if args.video is not None:
        _write_video(args.video, before, after, fps)
    var_before = temporal_variation(before[:, row], valid)
    var_after = temporal_variation(after[:, row], valid)
    print(
        f"wrote {args.image}: {len(valid)} frames ({int(valid.sum())} with a face), row {row} of "
        f"{side}; temporal variation before {var_before:.2f}, after "
        f"{var_after:.2f} grey levels per frame"
    )
    return 0


def _magnified_crops(args, preprocess):
    """Track, crop and magnify up to --frames frames with the model's Preprocessor.

    Returns before, after: uint8 [N, S, S, 3] (zeros where no face), valid: bool [N], fps.
    """
    from dataclasses import replace
    from itertools import islice

    from tqdm import tqdm

    from model.preprocess import Preprocessor
    from model.video import VideoDecodeError, VideoReader

    try:
        reader = VideoReader(args.clip, max_frames=args.frames)
    except VideoDecodeError as exc:
        raise MagnifyCliError(f"cannot open video {args.clip}: {exc}") from None
    fps = args.fps or reader.info.fps
    # Every frame is pictured: the sampler runs at the clip's own rate, on frame times
    # index / fps, so it takes each frame.
    pre = Preprocessor(replace(preprocess, window=replace(preprocess.window, fps=fps)), fps)
    side = preprocess.crop.input_size
    blank = np.zeros((side, side, 3), np.uint8)
    before, after, valid = [], [], []
    frames = islice(reader, args.frames)
    try:
        with reader:
            for frame, _ in tqdm(
                frames, total=args.frames, desc="magnify", unit="frame", disable=args.quiet
            ):
                prepared = pre.process(frame)
                face = prepared.crop is not None
                before.append(prepared.face_crop if face else blank)
                after.append(prepared.crop if face else blank)
                valid.append(face)
    except VideoDecodeError as exc:
        raise MagnifyCliError(f"{args.clip}: {exc}") from None
    if len(before) < 2:
        raise MagnifyCliError(f"{args.clip} holds fewer than 2 decodable frames")
    if not any(valid):
        raise MagnifyCliError(f"no face found in the first {len(valid)} frames of {args.clip}")
    return np.stack(before), np.stack(after), np.array(valid), fps


def _write_video(path: Path, before: np.ndarray, after: np.ndarray, fps: float) -> None:
    from model.video import VideoWriteError, write_clip

    path.parent.mkdir(parents=True, exist_ok=True)
    pairs = (np.concatenate([b, a], axis=1) for b, a in zip(before, after, strict=True))
    try:
        write_clip(path, pairs, fps)
    except VideoWriteError as exc:
        raise MagnifyCliError(str(exc)) from None
