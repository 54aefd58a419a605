"""Synthesise a labelled presentation-attack data set from genuine face clips.

Each source video is one person. From each, the command makes camera-processed genuine
copies and attacks (print: a still on a rigid sheet; replay: the clip on a screen; warp:
a bent print; cutout: a print with live eyes behind holes; still: one frame on a fixed
support; still_handheld: one frame moved rigidly by a hand; replay_handheld: the clip on a
phone or tablet held up in a hand in another person's room; print_photo: a printed photo,
often bent, in a hand or on a stand in another person's room), all recorded through the
same simulated camera. Whole people go to train/dev/test. --out receives the clips, a JSON
sidecar per clip with every parameter, index.csv and synth.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from training.config import output_folder

    parser.add_argument(
        "--source",
        action="append",
        required=True,
        type=Path,
        metavar="PATH",
        help="genuine face video, or a folder of them (not recursive); repeatable",
    )
    parser.add_argument(
        "--out", required=True, type=output_folder, metavar="DIR", help="data set folder to write"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of every random choice (default 0)"
    )
    parser.add_argument(
        "--kinds",
        default="print,replay",
        help="attack kinds, comma-separated: print,replay,warp,cutout,still,still_handheld,"
        "replay_handheld,print_photo (default print,replay)",
    )
    parser.add_argument(
        "--variants", type=int, default=2, help="clips per attack kind per source (default 2)"
    )
    parser.add_argument(
        "--genuine-variants", type=int, default=4, help="genuine clips per source (default 4)"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=4.0, help="longest clip, seconds (default 4)"
    )
    parser.add_argument(
        "--splits",
        metavar="SPEC",
        help="people per split, e.g. train=7,dev=2,test=2 (default: 20%% dev, 20%% test)",
    )
    parser.add_argument(
        "--test-sources",
        metavar="NAMES",
        help="comma-separated source names (file stems) that form the test split",
    )
    parser.add_argument(
        "--test-seed",
        type=int,
        help="seed of the test split's clips (default: --seed + 1)",
    )
    parser.add_argument(
        "--codec",
        choices=["mp4v", "MJPG"],
        default="mp4v",
        help="mp4v (.mp4) or MJPG (.avi) (default mp4v)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the data set in --out (its index, synth.json and split folders)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from training.records import summarize
    from training.synth.dataset import (
        SynthError,
        assign_splits,
        find_sources,
        parse_split_counts,
        synthesize_dataset,
    )

    try:
        paths = find_sources(args.source)
        counts = parse_split_counts(args.splits) if args.splits else None
        test = [Path(n).stem for n in _names(args.test_sources or "")]
        splits = assign_splits(
            [p.stem for p in paths], args.seed, counts=counts, test_subjects=test
        )
        records = synthesize_dataset(
            paths,
            args.out,
            seed=args.seed,
            kinds=_names(args.kinds),
            variants_per_source=args.variants,
            genuine_variants_per_source=args.genuine_variants,
            max_seconds=args.max_seconds,
            splits=splits,
            test_seed=args.test_seed,
            codec=args.codec,
            overwrite=args.overwrite,
            progress=not args.quiet,
        )
    except SynthError as exc:
        print(f"liveness synth: error: {exc}", file=sys.stderr)
        return 2
    summary = summarize(records)
    print(f"wrote {summary['clips']} clips to {args.out}")
    for split, kinds in sorted(summary["per_split"].items()):
        people = sorted({r.subject for r in records if r.split == split})
        detail = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        print(f"  {split}: {len(people)} people; {detail}")
    return 0
