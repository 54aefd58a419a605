"""What a model does with unseen people's stills and with real attacks: the rows that
``liveness eval`` (with ``--raw``/``--nuaa``) and ``liveness eval --cv`` add to their
reports.

- **Still attacks** (training/evaluate/stills.py): every raw genuine clip of a held-out
  person turned into ``still_plain`` (identical frames), ``still`` (a fixed photo in front
  of a simulated camera) and ``still_handheld`` (a photo moved by a hand); APCER per kind
  and the AUC of the raw genuine clips against them.
- **Real prints** of ``../shared/data/attacks/nuaa`` (its README: hand-held printed photos
  and live clips of the same six people, NUAA; for measurement and model choice only,
  never for training): APCER of the prints, BPCER of their live twins, their AUC, and
  the share of its people whose every live clip passes.

Rows are dicts as training/evaluate/crossval.py keeps them: ``role``, ``kind``,
``label``, ``score`` (None: no face in enough frames for one window), ``subject``. A
clip with no score gets no decision: left out of APCER/BPCER (as ISO/IEC 30107-3 counts
a PAD subsystem) and counted apart; a live clip without one does not pass.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from model.labels import GENUINE, GENUINE_CLASS, SPOOF, SPOOF_CLASS
from training.evaluate.metrics import roc_auc
from training.records import ClipRecord
from training.synth.sources import find_sources

RAW_KIND = "genuine_raw"  # a raw genuine recording (no simulated camera)
REPLAY_KIND = "real_replay"  # a real screen replay, scored by every model, never trained on
STILL_ROLE = "still"  # a still attack made from a held-out person's raw clip
NUAA_ROLE = "nuaa"  # a clip of the real print set, scored by every model
NUAA_PRINT = "realprint"  # labels.csv's kind of a print attack
NUAA_LIVE = "nuaa_live"  # the kind given to its live (genuine) twins in reports
STILLS_SEED = 0  # the still frames and motions: the same for every run, so runs compare
LABELS_NAME = "labels.csv"


class UnseenError(ValueError):
    """A real-attack or raw-clip folder that cannot be used (and why)."""


def source_of(subject: str) -> str:
    """The source (person group) of a subject id: its part before the first ``__``."""
    return subject.split("__", 1)[0]


def raw_records(folder: Path) -> list[ClipRecord]:
    """Every video in ``folder`` as a genuine clip of the subject named by its stem."""
    return [ClipRecord(path=p, label=GENUINE, subject=p.stem) for p in find_sources([folder])]


def replay_records(folder: Path) -> list[ClipRecord]:
    """Every video in ``folder`` (not its subfolders) as a real replay attack."""
    return [
        ClipRecord(path=p, label=SPOOF, attack=REPLAY_KIND, subject=p.stem)
        for p in find_sources([folder])
    ]


def nuaa_records(folder: Path) -> list[ClipRecord]:
    """The clips of a NUAA-style folder from its labels.csv (``file,label,kind,source``);
    subject = the file stem (its source, the person, is the part before ``__``)."""
    folder = Path(folder)
    labels = folder / LABELS_NAME
    if not labels.is_file():
        raise UnseenError(f"{folder}: no {LABELS_NAME} (file,label,kind,source) to read")
    records = []
    with open(labels, newline="") as f:
        for row in csv.DictReader(f):
            path = folder / row["file"]
            if not path.is_file():
                raise UnseenError(f"{labels}: {row['file']} is listed but not in {folder}")
            label = row["label"].strip().lower()
            if label not in (GENUINE, SPOOF):
                raise UnseenError(f"{labels}: {row['file']}: label {label!r}")
            attack = None if label == GENUINE else (row.get("kind") or NUAA_PRINT)
            records.append(ClipRecord(path=path, label=label, attack=attack, subject=path.stem))
    if not records:
        raise UnseenError(f"{labels} lists no clips")
    return records


def _share_at_or_above(scores: Sequence[float], threshold: float) -> float | None:
    return sum(1 for s in scores if s >= threshold) / len(scores) if scores else None


def auc_of(genuine: Sequence[float], attacks: Sequence[float]) -> float | None:
    if not genuine or not attacks:
        return None
    scores = np.array([*genuine, *attacks], np.float64)
    labels = np.array([GENUINE_CLASS] * len(genuine) + [SPOOF_CLASS] * len(attacks), np.int64)
    return roc_auc(scores, labels)


def still_figures(rows: Sequence[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """APCER per still kind (share scored at or above the threshold), its worst, the AUC
    of the raw genuine clips against all still attacks, and failures to acquire."""
    stills = [r for r in rows if r["role"] == STILL_ROLE]
    if not stills:
        return {}
    raw = [r["score"] for r in rows if r["role"] == "raw" and r["score"] is not None]
    per_kind: dict[str, list[float]] = {}
    for r in stills:
        per_kind.setdefault(r["kind"], [])
        if r["score"] is not None:
            per_kind[r["kind"]].append(r["score"])
    apcer = {k: _share_at_or_above(v, threshold) for k, v in sorted(per_kind.items())}
    present = [v for v in apcer.values() if v is not None]
    return {
        "still_apcer_per_kind": apcer,
        "still_apcer": max(present) if present else None,
        "auc_still": auc_of(raw, [s for v in per_kind.values() for s in v]),
        "n_still": len(stills),
        "still_failures": sum(1 for r in stills if r["score"] is None),
    }


def nuaa_figures(rows: Sequence[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """The real prints' APCER, their live twins' BPCER, their AUC and the share of the
    set's people whose every live clip passes (one value per row: with ``--cv`` a clip
    has a row per fold)."""
    clips = [r for r in rows if r["role"] == NUAA_ROLE]
    if not clips:
        return {}
    prints = [r["score"] for r in clips if r["label"] == SPOOF and r["score"] is not None]
    live = [r for r in clips if r["label"] == GENUINE]
    live_scores = [r["score"] for r in live if r["score"] is not None]
    passes: dict[str, bool] = {}
    for r in live:
        key = f"{r.get('fold', 0)}:{source_of(r['subject'])}"
        passes[key] = passes.get(key, True) and r["score"] is not None and r["score"] >= threshold
    accepted = _share_at_or_above(live_scores, threshold)
    return {
        "nuaa_apcer": _share_at_or_above(prints, threshold),
        "nuaa_bpcer": None if accepted is None else 1.0 - accepted,
        "nuaa_auc": auc_of(live_scores, prints),
        "nuaa_people_all_pass": sum(passes.values()) / len(passes) if passes else None,
        "n_nuaa_print": sum(1 for r in clips if r["label"] == SPOOF),
        "n_nuaa_live": len(live),
        "nuaa_failures": sum(1 for r in clips if r["score"] is None),
    }


def unseen_figures(rows: Sequence[dict[str, Any]], threshold: float) -> dict[str, Any]:
    return {**still_figures(rows, threshold), **nuaa_figures(rows, threshold)}


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def unseen_table_rows(fig: dict[str, Any]) -> list[tuple[str, str]]:
    """(measure, value) rows for a report's table: the still kinds, then the real prints."""
    rows = [
        (f"APCER, {kind} (from raw clips)", _pct(v))
        for kind, v in fig.get("still_apcer_per_kind", {}).items()
    ]
    if "still_apcer_per_kind" in fig:
        rows.append(("AUC, raw genuine vs still attacks", _pct(fig.get("auc_still"))))
    if "nuaa_apcer" in fig:
        rows += [
            ("APCER, real prints (NUAA)", _pct(fig["nuaa_apcer"])),
            ("BPCER, their live twins (NUAA)", _pct(fig["nuaa_bpcer"])),
            ("AUC, NUAA live vs real prints", _pct(fig["nuaa_auc"])),
            ("NUAA people whose every live clip passes", _pct(fig["nuaa_people_all_pass"])),
        ]
    return rows


def unseen_note(fig: dict[str, Any]) -> str:
    """One sentence on the counts and failures behind the rows ("" when there are none)."""
    parts = []
    if "n_still" in fig:
        parts.append(
            f"{fig['n_still']} still attacks from raw clips ({fig['still_failures']} with no "
            "face in enough frames, left out of APCER)"
        )
    if "n_nuaa_print" in fig:
        parts.append(
            f"NUAA: {fig['n_nuaa_print']} print and {fig['n_nuaa_live']} live scores "
            f"({fig['nuaa_failures']} with no face)"
        )
    return ("; ".join(parts) + ".") if parts else ""
