"""Still attacks made from raw genuine clips, for measuring a model on unseen people.

Every raw genuine recording (no simulated camera) becomes three attacks of its own
length and frame rate, each from one frame of the clip chosen by a seeded draw (the
first of a few candidates that shows a face, as ``training.synth.print.choose_still``):

* ``still_plain``    -- the frame repeated, exactly: identical frames (only the video
  codec touches them), what a looped photo uploaded as a clip looks like;
* ``still``          -- the frame repeated in front of a simulated camera
  (training/synth/camera.py, drawn as for the synthetic genuine clips): fresh sensor
  noise every frame, white balance, tone, the camera's JPEG; a photo on a fixed support;
* ``still_handheld`` -- the frame moved rigidly by a hand (a homography walk with
  tremor, half of them with the camera shaking too; training/synth/still.py), then the
  same simulated camera.

Scenes are rendered at the synthetic set's scene size (short side at most 360 px). The
clips are written once to a folder (``<kind>/<subject>.mp4`` and a JSON sidecar) and
reused while the sidecar matches (version, seed, source hash).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from model.labels import SPOOF
from model.video import write_clip
from training.records import ClipRecord
from training.synth.camera import Camera, CameraProfile
from training.synth.print import STILL_CANDIDATES
from training.synth.sources import SourceClip, clip_rng, probe_source, read_frames_at
from training.synth.still import StillScene, sample_still_params

EVAL_STILL_KINDS = ("still", "still_plain", "still_handheld")
STILLS_VERSION = 1  # bump when the same seed would render different clips
CODEC = "mp4v"


def _candidates(source: SourceClip, rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    """A few frames of the clip (scene-sized), drawn by ``rng``, and their indices."""
    picks = sorted(int(i) for i in rng.permutation(source.frames)[:STILL_CANDIDATES])
    return read_frames_at(source, picks), picks


def render_still_frames(
    kind: str, source: SourceClip, seed: int
) -> tuple[Iterator[np.ndarray], float, int, dict]:
    """Recorded frames of one still attack of ``source`` (a generator), its fps, frame
    count and parameters. ``kind`` is one of EVAL_STILL_KINDS."""
    if kind not in EVAL_STILL_KINDS:
        raise ValueError(f"unknown still kind {kind!r}; known: {', '.join(EVAL_STILL_KINDS)}")
    rng = clip_rng(seed, f"{source.subject}/eval-{kind}")
    frames, indices = _candidates(source, rng)
    n, fps = source.frames, source.fps
    scene_kind = "still_handheld" if kind == "still_handheld" else "still"
    params = sample_still_params(scene_kind, frames, rng)
    scene = StillScene(frames[params.still_index], params, n / fps)
    described = {
        "kind": kind,
        "source_frame": indices[params.still_index],
        "scene": params.to_dict(),
    }
    if kind == "still_plain":
        return scene.frames(n, fps), fps, n, described
    profile = replace(CameraProfile.sample(rng, source.scene_hw, fps), fps=fps)
    camera = Camera(profile)
    described["camera"] = profile.to_dict()
    shots = (camera.capture(f, i / fps) for i, f in enumerate(scene.frames(n, fps)))
    return shots, fps, n, described


def _sidecar(source: SourceClip, seed: int, params: dict) -> dict:
    return {
        "version": STILLS_VERSION,
        "seed": seed,
        "source": {"name": source.path.name, "sha256": source.sha256},
        **params,
    }


def _is_current(path: Path, source: SourceClip, seed: int) -> bool:
    side = path.with_suffix(".json")
    if not (path.is_file() and side.is_file()):
        return False
    old = json.loads(side.read_text())
    return (old.get("version"), old.get("seed"), old.get("source", {}).get("sha256")) == (
        STILLS_VERSION,
        seed,
        source.sha256,
    )


def _clip_name(record: ClipRecord) -> str:
    """The raw clip's stem, prefixed by its subject where they differ (a data set's
    genuine clips share stems such as genuine_0 across people)."""
    stem = Path(record.path).stem
    return stem if record.subject in ("", stem) else f"{record.subject}__{stem}"


def make_still_attacks(
    raw: Iterable[ClipRecord],
    out_dir: Path,
    *,
    seed: int = 0,
    kinds: Sequence[str] = EVAL_STILL_KINDS,
    progress: bool = True,
) -> list[ClipRecord]:
    """The still attacks of every raw genuine clip, written under ``out_dir`` (clips
    already there with a matching sidecar are kept); their records, subject = the raw
    clip's subject, attack = the still kind."""
    out_dir = Path(out_dir)
    jobs = [(r, kind) for r in raw for kind in kinds]
    records = []
    probed: dict[Path, SourceClip] = {}
    for record, kind in tqdm(jobs, desc="still attacks", unit="clip", disable=not progress):
        source = probed.get(record.path) or probe_source(Path(record.path))
        probed[record.path] = source
        path = out_dir / kind / f"{_clip_name(record)}.mp4"
        if not _is_current(path, source, seed):
            path.parent.mkdir(parents=True, exist_ok=True)
            frames, fps, n, params = render_still_frames(kind, source, seed)
            write_clip(path, frames, fps, CODEC)
            side = _sidecar(source, seed, {**params, "frames": n, "fps": fps})
            path.with_suffix(".json").write_text(json.dumps(side, indent=1, sort_keys=True) + "\n")
        records.append(
            ClipRecord(
                path=path,
                label=SPOOF,
                attack=kind,
                subject=record.subject,
                meta={"raw": Path(record.path).name, "seed": seed},
            )
        )
    return records
