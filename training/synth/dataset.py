"""A labelled presentation-attack data set made from genuine face clips.

Each genuine source clip (one person) yields camera-processed genuine copies and attacks
rendered from it: ``print`` (a still on a rigid sheet), ``replay`` (the clip on a
screen), ``warp`` (a bent print), ``cutout`` (a print with live eyes behind holes),
``still`` (one frame on a fixed support), ``still_handheld`` (one frame moved rigidly
by a hand, training/synth/still.py), and the scene kinds, held up in front of another
person's room (training/synth/backdrop.py): ``replay_handheld`` (the clip on a phone or
tablet in a hand, training/synth/device.py) and ``print_photo`` (a printed photo, bent,
in a hand or on a stand, training/synth/photo.py).
Every clip, of either class, then goes through the same simulated camera
(training/synth/camera.py), so frame rate, resolution, codec and noise carry no label.

Every random choice comes from one Generator per clip, seeded by (seed, clip id), so a
clip does not depend on which other clips are made or in what order. The test split uses
its own seed, so held-out attacks are drawn apart from those the model trained on. Each clip
has a JSON sidecar with all its parameters; ``synth.json`` describes the whole set and
``index.csv`` (training.records) lists the clips.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from model.labels import GENUINE, SPOOF
from model.video import write_clip
from training.records import SPLITS, ClipRecord, summarize, write_index
from training.synth.backdrop import Backdrop, BackdropLook, make_backdrop, pick_backdrop_source
from training.synth.camera import CODECS, Camera, CameraProfile
from training.synth.photo_scene import render_print_photo
from training.synth.print import render_print_attack
from training.synth.replay import render_replay_attack
from training.synth.replay_handheld import render_replay_handheld
from training.synth.sources import (
    SourceClip,
    SynthError,
    assign_splits,
    clip_rng,
    find_sources,
    parse_split_counts,
    probe_source,
    read_frames_at,
)
from training.synth.still import STILL_KINDS, render_still_attack

SYNTH_VERSION = 1  # bump when the same seed would render different clips
PRINT_KINDS = ("print", "warp", "cutout")
SCENE_KINDS = ("replay_handheld", "print_photo")  # held up in front of another person's room
ATTACK_KINDS = ("print", "replay", "warp", "cutout", *STILL_KINDS, *SCENE_KINDS)
DEFAULT_KINDS = ("print", "replay")
CLIP_SHARE = (0.8, 1.0)  # a clip lasts this share of max_seconds (or of a shorter source)
OUTPUT_NAMES = ("index.csv", "synth.json", *SPLITS)  # what --overwrite replaces

__all__ = [
    "ATTACK_KINDS",
    "SynthError",
    "assign_splits",
    "clip_rng",
    "find_sources",
    "parse_split_counts",
    "render_attack",
    "synthesize_dataset",
]


def render_attack(
    kind: str,
    frames: np.ndarray,
    fps: float,
    rng: np.random.Generator,
    *,
    support: str | None = None,
    backdrop: Backdrop | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Render attack ``kind`` from live frames [T, H, W, 3] BGR at ``fps``: the scene in
    front of the camera, same shape, and its parameters. ``support`` forces "hand"/"fixed"
    (not for the still kinds, whose kind is their support, nor ``replay_handheld``).
    ``backdrop`` is the room behind the scene kinds (a drawn room if None)."""
    if kind == "replay_handheld":
        out, params = render_replay_handheld(frames, fps, rng, backdrop=backdrop)
    elif kind == "print_photo":
        out, params = render_print_photo(frames, fps, rng, backdrop=backdrop, support=support)
    elif kind in STILL_KINDS:
        out, params = render_still_attack(kind, frames, fps, rng)
    elif kind == "replay":
        out, params = render_replay_attack(frames, fps, rng, support=support)
    elif kind in PRINT_KINDS:
        out, params = render_print_attack(kind, frames, fps, rng, support=support)
    else:
        raise SynthError(f"unknown attack kind {kind!r}; known kinds: {', '.join(ATTACK_KINDS)}")
    return out, params.to_dict()


@dataclass
class ClipPlan:
    """What is decided about a clip before any pixel is read: camera and source stretch."""

    clip_id: str  # "<subject>/<kind>/<variant>"
    rng: np.random.Generator  # continues into the attack's own draws
    camera: CameraProfile
    start_s: float  # where the clip starts in the source
    source_frames: list[int]  # source frame index shown at each output frame


def plan_clip(
    source: SourceClip, kind: str, variant: int, seed: int, max_seconds: float
) -> ClipPlan:
    """Draw a clip's camera and source stretch; genuine and attack clips draw them alike."""
    clip_id = f"{source.subject}/{kind}/{variant}"
    rng = clip_rng(seed, clip_id)
    camera = CameraProfile.sample(rng, source.scene_hw, source.fps)
    duration = min(max_seconds * rng.uniform(*CLIP_SHARE), source.duration_s)
    start = float(rng.uniform(0.0, source.duration_s - duration))
    n = max(2, int(duration * camera.fps))
    # Frame-rate resampling by timestamp: the source frame on show at each output instant.
    idx = [
        min(source.frames - 1, int((start + k / camera.fps) * source.fps + 1e-6)) for k in range(n)
    ]
    return ClipPlan(clip_id, rng, camera, start, idx)


def synthesize_clip(
    source: SourceClip,
    kind: str,
    variant: int,
    *,
    seed: int,
    split: str,
    out_dir: Path,
    max_seconds: float,
    codec: str,
    rooms: Sequence[SourceClip] = (),
) -> ClipRecord:
    """Render, record and write one clip (``kind`` "genuine" or an attack) and its sidecar.
    ``rooms``: the other people's sources a scene kind may take its room from."""
    plan = plan_clip(source, kind, variant, seed, max_seconds)
    profile, idx = plan.camera, plan.source_frames
    frames = read_frames_at(source, idx)
    params: dict[str, Any] | None = None
    if kind != GENUINE:
        backdrop = None
        if kind in SCENE_KINDS and rooms:
            backdrop = draw_backdrop(rooms, frames.shape[1:3], plan.rng)
        frames, params = render_attack(kind, frames, profile.fps, plan.rng, backdrop=backdrop)
    rel = Path(split) / source.subject / f"{kind}_{variant}{CODECS[codec]}"
    path = out_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    camera = Camera(profile)
    shots = (camera.capture(f, i / profile.fps) for i, f in enumerate(frames))
    write_clip(path, shots, profile.fps, codec)
    count = len(frames)
    sidecar = {
        "version": SYNTH_VERSION,
        "id": plan.clip_id,
        "clip": rel.as_posix(),
        "seed": seed,
        "split": split,
        "label": GENUINE if kind == GENUINE else SPOOF,
        "attack": None if kind == GENUINE else kind,
        "source": {"name": source.path.name, "sha256": source.sha256},
        "segment": {"start_s": plan.start_s, "frames": count, "source_frames": [idx[0], idx[-1]]},
        "codec": codec,
        "camera": profile.to_dict(),
        "attack_params": params,
    }
    side = path.with_suffix(".json")
    side.write_text(json.dumps(sidecar, indent=1, sort_keys=True) + "\n")
    motion = (params or {}).get("motion") or (params or {}).get("pose", {}).get("motion", {})
    support = motion.get("support", "")
    return ClipRecord(
        path=path,
        label=sidecar["label"],
        attack=sidecar["attack"],
        subject=source.subject,
        split=split,
        meta={
            "source": source.path.name,
            "variant": variant,
            "seed": seed,
            "fps": profile.fps,
            "width": profile.width,
            "height": profile.height,
            "frames": count,
            "codec": codec,
            "support": support,
            "params": side.relative_to(out_dir).as_posix(),
        },
    )


def draw_backdrop(
    rooms: Sequence[SourceClip], scene_hw: tuple[int, int], rng: np.random.Generator
) -> Backdrop:
    """Another person's room: a source, a frame of it and its look, from the clip's draws."""
    room = rooms[pick_backdrop_source(rooms, rng)]
    index = int(rng.integers(0, room.frames))
    look = BackdropLook.sample(rng)
    frame = read_frames_at(room, [index])[0]
    return make_backdrop(frame, scene_hw, look, room.path.name, index)


def backdrop_sources(
    source: SourceClip, clips: Sequence[SourceClip], split_of: dict[str, str]
) -> list[SourceClip]:
    """Whose rooms a person's scene kinds may use: the other people of its split, else
    every other person (a held-out person's room is not shown in training attacks
    while the split has anyone else)."""
    others = [c for c in clips if c.subject != source.subject]
    same = [c for c in others if split_of[c.subject] == split_of[source.subject]]
    return same or others


def _prepare_output(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise SynthError(f"output {out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise SynthError(
                f"output folder {out_dir} is not empty (pass overwrite / --overwrite to replace a data set)"
            )
        for name in OUTPUT_NAMES:  # only what a previous run wrote; other files stay
            old = out_dir / name
            if old.is_dir():
                shutil.rmtree(old)
            elif old.exists():
                old.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)


def _check_options(
    kinds: Sequence[str], variants: int, genuine_variants: int, max_seconds: float, codec: str
) -> None:
    unknown = [k for k in kinds if k not in ATTACK_KINDS]
    if unknown or not kinds:
        raise SynthError(
            f"unknown attack kind(s) {unknown or '(none given)'}; known kinds: {', '.join(ATTACK_KINDS)}"
        )
    if len(set(kinds)) != len(kinds):
        raise SynthError(f"attack kinds repeat: {list(kinds)}")
    if variants < 1 or genuine_variants < 1:
        raise SynthError(
            "variants per source must be at least 1, for attacks and for genuine clips"
        )
    if not max_seconds > 0:
        raise SynthError(f"max_seconds must be positive, got {max_seconds}")
    if codec not in CODECS:
        raise SynthError(f"codec must be one of {sorted(CODECS)}, got {codec!r}")


def synthesize_dataset(
    sources: Sequence[Path],
    out_dir: Path,
    *,
    seed: int,
    kinds: Sequence[str] = DEFAULT_KINDS,
    variants_per_source: int = 2,
    genuine_variants_per_source: int = 4,
    max_seconds: float = 4.0,
    splits: dict[str, str] | None = None,
    test_seed: int | None = None,
    codec: str = "mp4v",
    overwrite: bool = False,
    progress: bool = True,
) -> list[ClipRecord]:
    """Make the data set in ``out_dir`` from genuine ``sources`` (files or folders).

    Per source: ``genuine_variants_per_source`` camera-processed genuine clips and
    ``variants_per_source`` clips of each attack kind, each at most ``max_seconds`` long.
    ``splits`` maps each subject (source file stem) to "train"/"dev"/"test"; by default
    assign_splits(subjects, seed) chooses. Test-split clips are drawn with ``test_seed``
    (default seed + 1). Writes the clips with JSON sidecars, index.csv and synth.json;
    returns the clips' records.
    """
    kinds = tuple(kinds)
    _check_options(kinds, variants_per_source, genuine_variants_per_source, max_seconds, codec)
    clip_rng(seed, "check")  # validates the seed before any work
    test_seed = seed + 1 if test_seed is None else test_seed
    clip_rng(test_seed, "check")
    out_dir = Path(out_dir)
    clips = [probe_source(p) for p in find_sources(list(sources))]
    subjects = [c.subject for c in clips]
    split_of = dict(splits) if splits is not None else assign_splits(subjects, seed)
    missing = sorted(set(subjects) - set(split_of))
    bad = {k: v for k, v in split_of.items() if v not in SPLITS}
    if missing or bad:
        raise SynthError(
            f"splits must give each source one of {SPLITS}: missing {missing}, invalid {bad}"
        )
    _prepare_output(out_dir, overwrite)
    jobs = [
        (clip, kind, v)
        for clip in clips
        for kind, n in (
            (GENUINE, genuine_variants_per_source),
            *((k, variants_per_source) for k in kinds),
        )
        for v in range(n)
    ]
    records = []
    for clip, kind, v in tqdm(jobs, desc="synth", unit="clip", disable=not progress):
        split = split_of[clip.subject]
        records.append(
            synthesize_clip(
                clip,
                kind,
                v,
                seed=test_seed if split == "test" else seed,
                split=split,
                out_dir=out_dir,
                max_seconds=max_seconds,
                codec=codec,
                rooms=backdrop_sources(clip, clips, split_of) if kind in SCENE_KINDS else (),
            )
        )
    write_index(records, out_dir)
    description = {
        "version": SYNTH_VERSION,
        "seed": seed,
        "test_seed": test_seed,
        "kinds": list(kinds),
        "variants_per_source": variants_per_source,
        "genuine_variants_per_source": genuine_variants_per_source,
        "max_seconds": max_seconds,
        "codec": codec,
        "sources": [{**c.describe(), "split": split_of[c.subject]} for c in clips],
        "counts": summarize(records),
    }
    (out_dir / "synth.json").write_text(json.dumps(description, indent=2, sort_keys=True) + "\n")
    return records
