"""Decode check over a clip list: which clips OpenCV cannot open or read a frame from.

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
    """(path, reason) for every clip that is missing, cannot be opened, or has no frame."""
    import cv2  # decoding is the only part of the data set package that needs OpenCV

    problems = []
    for record in tqdm(records, desc="checking clips", unit="clip", disable=not progress):
        path = Path(record.path)
        if not path.is_file():
            problems.append((path, "missing"))
            continue
        capture = cv2.VideoCapture(str(path))
        try:
            if not capture.isOpened():
                problems.append((path, "OpenCV cannot open it"))
                continue
            ok, frame = capture.read()
            if not ok or frame is None or frame.size == 0:
                problems.append((path, "no decodable frame"))
        finally:
            capture.release()
    return problems
