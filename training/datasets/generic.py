"""A user's own data: an ``index.csv`` or a folder tree sorted by split and label.

Folder layout (``folder:`` specs)::

    <root>/<split>/<label>/[<attack kind>/][<subject>/]<clip>
    <root>/<label>/...                      (no split folders: split left to training)

- ``<split>``: ``train``, ``dev`` (also ``devel``, ``val``, ``validation``) or ``test``;
- ``<label>``: ``genuine`` (also ``real``, ``live``, ``bonafide``) or ``spoof`` (also
  ``attack``, ``fake``);
- under ``spoof/``, the first sub-folder names the attack kind (``spoof/print/x.mp4``);
  clips directly in ``spoof/`` have no attack kind;
- a further sub-folder names the subject (``genuine/alice/take1.mp4``,
  ``spoof/replay/alice/take1.mp4``); without one, the subject is the file name up to its
  first underscore (``alice_take1.mp4`` -> ``alice``), or the whole name when it has none;
- clips: ``.mp4 .avi .mov .webm .mkv``.

CSV (``csv:`` specs): ``training.records.read_index`` columns
``path,label[,attack,subject,split,<meta>...]``, paths relative to the CSV's folder.
"""

from __future__ import annotations

from pathlib import Path

from model.labels import GENUINE, SPOOF
from training.datasets.base import (
    DatasetLayoutError,
    describe_dir,
    list_videos,
    require_dir,
)
from training.records import ClipRecord, read_index

SPLIT_NAMES = {"train": "train", "dev": "dev", "devel": "dev", "val": "dev"}
SPLIT_NAMES |= {"validation": "dev", "test": "test"}
LABEL_NAMES = {"genuine": GENUINE, "real": GENUINE, "live": GENUINE, "bonafide": GENUINE}
LABEL_NAMES |= {"spoof": SPOOF, "attack": SPOOF, "fake": SPOOF}

_EXPECTED = (
    "<root>/{train,dev,test}/{genuine,spoof}/[<attack kind>/][<subject>/]<clip> "
    "or <root>/{genuine,spoof}/..."
)


def subject_from_name(path: Path) -> str:
    """The subject a clip's file name gives: its stem up to the first underscore."""
    return path.stem.split("_", 1)[0]


def load_folder(root: Path | str) -> list[ClipRecord]:
    """Clips of a folder tree laid out as this module's docstring describes."""
    root = require_dir(root, "folder data set")
    split_dirs = {
        d: SPLIT_NAMES[d.name.lower()] for d in _subdirs(root) if d.name.lower() in SPLIT_NAMES
    }
    label_dirs = [d for d in _subdirs(root) if d.name.lower() in LABEL_NAMES]
    if split_dirs and label_dirs:
        raise DatasetLayoutError(
            f"{root}: mixes split folders ({', '.join(d.name for d in split_dirs)}) with label "
            f"folders ({', '.join(d.name for d in label_dirs)}); use one level or the other"
        )
    groups = [(d, None) for d in label_dirs] if label_dirs else []
    for split_dir, split in split_dirs.items():
        groups += [(d, split) for d in _subdirs(split_dir) if d.name.lower() in LABEL_NAMES]
    if not groups:
        raise DatasetLayoutError(
            f"{root} has no split or label folders. Expected {_EXPECTED}. Found: {describe_dir(root)}"
        )
    records = []
    for label_dir, split in groups:
        records += _label_clips(label_dir, LABEL_NAMES[label_dir.name.lower()], split)
    if not records:
        raise DatasetLayoutError(f"{root}: the label folders hold no clips ({_EXPECTED})")
    return records


def load_csv(path: Path | str) -> list[ClipRecord]:
    """Clips of an index.csv (or of the index.csv in the given folder); every clip must exist."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / "index.csv"
    if not path.is_file():
        raise DatasetLayoutError(f"index file {path} does not exist")
    try:
        records = read_index(path.resolve())
    except ValueError as exc:
        raise DatasetLayoutError(str(exc)) from exc
    if not records:
        raise DatasetLayoutError(f"{path}: the index lists no clips")
    missing = [r.path for r in records if not Path(r.path).is_file()]
    if missing:
        raise DatasetLayoutError(
            f"{path}: {len(missing)} listed clips do not exist, e.g. {', '.join(map(str, missing[:3]))}"
        )
    return records


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _label_clips(label_dir: Path, label: str, split: str | None) -> list[ClipRecord]:
    """Clips under one label folder: depth 0 = clips, then attack kind (spoof), then subject."""
    records = []
    levels = ("attack", "subject") if label == SPOOF else ("subject",)
    for path in list_videos(label_dir, recursive=True):
        parts = path.relative_to(label_dir).parts[:-1]  # folders between the label and the clip
        if len(parts) > len(levels):
            raise DatasetLayoutError(
                f"{path}: too deep under {label_dir.name}/ (expected {'/'.join(f'[<{x}>]' for x in levels)}/<clip>)"
            )
        named = dict(zip(levels, parts, strict=False))
        records.append(
            ClipRecord(
                path=path,
                label=label,
                attack=named.get("attack") if label == SPOOF else None,
                subject=named.get("subject") or subject_from_name(path),
                split=split,
                meta={"dataset": "folder"},
            )
        )
    return records
