"""What a data set is to the rest of training: a list of labelled clips with splits.

Every adapter (public data sets, the synthetic generator, a user's own CSV) produces
``ClipRecord`` lists; training, caching and evaluation consume nothing else.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from model.labels import GENUINE, GENUINE_CLASS, LABELS, SPOOF_CLASS

SPLITS = ("train", "dev", "test")

# Columns of the generic index file (index.csv) a data set folder may carry.
INDEX_COLUMNS = ("path", "label", "attack", "subject", "split")


@dataclass(frozen=True)
class ClipRecord:
    path: Path  # absolute path of the video file
    label: str  # "genuine" or "spoof"
    attack: str | None = None  # attack kind for spoofs ("print", "replay", ...); None for genuine
    subject: str = ""  # person / identity id, used to keep splits person-disjoint
    split: str | None = None  # "train" / "dev" / "test" when the protocol fixes it
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ValueError(f"{self.path}: label must be one of {LABELS}, got {self.label!r}")
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"{self.path}: split must be one of {SPLITS}, got {self.split!r}")
        if self.label == GENUINE and self.attack:
            raise ValueError(f"{self.path}: a genuine clip cannot have an attack kind")

    @property
    def is_genuine(self) -> bool:
        return self.label == GENUINE

    @property
    def target(self) -> int:
        """The network's class index (model/labels.py)."""
        return GENUINE_CLASS if self.is_genuine else SPOOF_CLASS


def write_index(records: list[ClipRecord], root: Path, name: str = "index.csv") -> Path:
    """Write records as an index.csv with paths relative to ``root``; extra meta goes in
    further columns."""
    root = Path(root)
    extra = sorted({k for r in records for k in r.meta})
    path = root / name
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*INDEX_COLUMNS, *extra])
        for r in records:
            rel = Path(r.path).resolve().relative_to(root.resolve())
            w.writerow(
                [rel.as_posix(), r.label, r.attack or "", r.subject, r.split or ""]
                + [r.meta.get(k, "") for k in extra]
            )
    return path


def read_index(path: Path) -> list[ClipRecord]:
    """Read an index.csv written by ``write_index`` (or by hand: path,label[,attack,subject,split])."""
    path = Path(path)
    root = path.parent
    records = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"path", "label"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: an index needs at least the columns 'path' and 'label'")
        for line, row in enumerate(reader, start=2):
            clip = Path(row["path"])
            clip = clip if clip.is_absolute() else root / clip
            meta = {k: v for k, v in row.items() if k not in INDEX_COLUMNS and v not in (None, "")}
            try:
                records.append(
                    ClipRecord(
                        path=clip,
                        label=row["label"].strip().lower(),
                        attack=(row.get("attack") or "").strip() or None,
                        subject=(row.get("subject") or "").strip(),
                        split=(row.get("split") or "").strip().lower() or None,
                        meta=meta,
                    )
                )
            except ValueError as exc:
                raise ValueError(f"{path}:{line}: {exc}") from exc
    return records


def summarize(records: list[ClipRecord]) -> dict[str, Any]:
    """Counts per split and label/attack, for logs and manifests."""
    out: dict[str, Any] = {}
    for r in records:
        s = out.setdefault(r.split or "unsplit", {})
        key = r.attack or r.label
        s[key] = s.get(key, 0) + 1
    return {"clips": len(records), "per_split": out}


def as_dict(record: ClipRecord) -> dict[str, Any]:
    d = asdict(record)
    d["path"] = str(record.path)
    return d
