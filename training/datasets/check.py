"""Decode check over a clip list: which clips the project's reader (model/video.py, the
one the cache and the service decode with) cannot read a frame from.

Adapters only list files; a broken download or an unsupported codec shows up here,
before a long training or evaluation run trips over it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from training.records import ClipRecord


def unreadable_clips(
    records: Sequence[ClipRecord], progress: bool = False
) -> list[tuple[Path, str]]:
    """(path, reason) for every clip that is missing or has no decodable frame."""
    from model.video import VideoDecodeError, read_frames  # the package's only decoding

    problems = []
    for record in tqdm(records, desc="checking clips", unit="clip", disable=not progress):
        path = Path(record.path)
        if not path.is_file():
            problems.append((path, "missing"))
            continue
        try:
            read_frames(path, max_frames=1)
        except VideoDecodeError as exc:
            problems.append((path, f"no decodable frame ({exc})"))
    return problems
