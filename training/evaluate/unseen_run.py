"""``liveness eval --raw/--replays/--nuaa``: a model directory on its test people's raw
clips, their still attacks and real attacks, through ONNX Runtime as the server scores.

The test people are the sources (subject up to its first ``__``) of the ``--data`` clips.
Their raw genuine recordings (``--raw``) are scored as they are and turned into still
attacks (training/evaluate/stills.py: still_plain, still, still_handheld, seed
STILLS_SEED, kept in ``stills_dir``); real replays (``--replays``) and the real prints and
live twins of a NUAA-style folder (``--nuaa``) are scored whole. At the evaluation's
threshold: BPCER of the raw clips, APCER per attack kind (the data set's attacks and the
still kinds) and its worst, the AUC of the raw clips against all of them, the share of
people whose every raw clip passes, the real replays' APCER and the NUAA figures
(training/evaluate/unseen.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from model.labels import GENUINE, SPOOF
from model.runtime import LivenessModel
from training.evaluate.score import ClipOutcome, score_records
from training.evaluate.stills import make_still_attacks
from training.evaluate.unseen import (
    NUAA_LIVE,
    NUAA_ROLE,
    RAW_KIND,
    STILL_ROLE,
    STILLS_SEED,
    UnseenError,
    auc_of,
    nuaa_records,
    raw_records,
    replay_records,
    source_of,
    unseen_figures,
    unseen_note,
    unseen_table_rows,
)
from training.records import ClipRecord


def _rows(role: str, outcomes: Sequence[ClipOutcome]) -> list[dict[str, Any]]:
    rows = []
    for o in outcomes:
        r = o.record
        if role == "raw":
            kind = RAW_KIND
        elif r.is_genuine:
            kind = NUAA_LIVE if role == NUAA_ROLE else GENUINE
        else:
            kind = r.attack or SPOOF
        rows.append(
            {
                "role": role,
                "path": str(r.path),
                "subject": r.subject,
                "kind": kind,
                "label": r.label,
                "score": o.score,
            }
        )
    return rows


def _share_passing(scores: Sequence[float | None], threshold: float) -> float | None:
    return (
        sum(1 for s in scores if s is not None and s >= threshold) / len(scores) if scores else None
    )


def raw_figures(rows: Sequence[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """BPCER of the raw clips, APCER per attack kind (the data set's, and the stills made
    from raw clips as "<kind> (raw)", apart from a data set's own still kinds), the AUC of
    raw clips vs every attack, and the share of people (subjects) all passing."""
    raw = [r for r in rows if r["role"] == "raw"]
    if not raw:
        return {}
    raw_scored = [r["score"] for r in raw if r["score"] is not None]
    attacks = [r for r in rows if r["role"] in ("test", STILL_ROLE) and r["label"] == SPOOF]
    per_kind: dict[str, list[float]] = {}
    for r in attacks:
        kind = f"{r['kind']} (raw)" if r["role"] == STILL_ROLE else r["kind"]
        if r["score"] is not None:
            per_kind.setdefault(kind, []).append(r["score"])
    people: dict[str, bool] = {}
    for r in raw:
        ok = r["score"] is not None and r["score"] >= threshold
        people[r["subject"]] = people.get(r["subject"], True) and ok
    passing = _share_passing(raw_scored, threshold)
    return {
        "bpcer_raw": None if passing is None else 1.0 - passing,
        "apcer_per_attack": {k: _share_passing(v, threshold) for k, v in sorted(per_kind.items())},
        "auc_raw": auc_of(raw_scored, [s for v in per_kind.values() for s in v]),
        "people_all_raw_pass": sum(people.values()) / len(people),
        "n_raw": len(raw),
        "raw_failures": len(raw) - len(raw_scored),
        "n_people": len(people),
    }


def evaluate_unseen(
    model: LivenessModel,
    records: Sequence[ClipRecord],
    outcomes: Sequence[ClipOutcome],
    threshold: float,
    *,
    raw: Path | None = None,
    replays: Path | None = None,
    nuaa: Path | None = None,
    stills_dir: Path,
    progress: bool = True,
) -> dict[str, Any]:
    """Score and measure the module docstring's clips; ``outcomes`` are ``records``'
    scores (the data set's attacks are not scored twice). Returns the figures and rows."""
    rows = _rows("test", [o for o in outcomes if not o.record.is_genuine])
    if raw is not None:
        people = {source_of(r.subject) for r in records if r.subject}
        raws = [r for r in raw_records(raw) if source_of(r.subject) in people]
        if not raws:
            raise UnseenError(f"--raw {raw}: no clip of the data set's people {sorted(people)}")
        stills = make_still_attacks(raws, stills_dir, seed=STILLS_SEED, progress=progress)
        rows += _rows("raw", score_records(model, raws, progress=progress, desc="raw clips"))
        rows += _rows(STILL_ROLE, score_records(model, stills, progress=progress, desc="stills"))
    if replays is not None:
        reps = score_records(model, replay_records(replays), progress=progress, desc="replays")
        rows += _rows("replay", reps)
    if nuaa is not None:
        prints = score_records(model, nuaa_records(nuaa), progress=progress, desc="NUAA")
        rows += _rows(NUAA_ROLE, prints)
    figures = {**raw_figures(rows, threshold), **unseen_figures(rows, threshold)}
    replay_scores = [r["score"] for r in rows if r["role"] == "replay" and r["score"] is not None]
    if replays is not None:
        figures["replay_apcer"] = _share_passing(replay_scores, threshold)
    return {**figures, "rows": rows}


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def unseen_markdown(fig: dict[str, Any]) -> list[str]:
    """The report.md section of ``evaluate_unseen``'s figures ([] when there are none)."""
    rows = []
    if "bpcer_raw" in fig:
        rows.append(("BPCER, raw genuine clips", _pct(fig["bpcer_raw"])))
        rows += [(f"APCER, {k}", _pct(v)) for k, v in fig["apcer_per_attack"].items()]
        rows.append(("AUC, raw genuine vs every attack above", _pct(fig["auc_raw"])))
        rows.append(("AUC, raw genuine vs still attacks", _pct(fig.get("auc_still"))))
        rows.append(
            ("People whose every raw genuine clip passes", _pct(fig["people_all_raw_pass"]))
        )
    if "replay_apcer" in fig:
        rows.append(("APCER, real replays", _pct(fig["replay_apcer"])))
    rows += [r for r in unseen_table_rows(fig) if "NUAA" in r[0]]
    if not rows:
        return []
    return [
        "## Unseen people: raw clips, still attacks, real attacks",
        "",
        "At the same threshold. Raw genuine clips of the test people (no simulated camera), "
        "the still attacks made from each of them (still_plain: identical frames; still: a "
        "fixed photo before a simulated camera; still_handheld: a photo moved by a hand), "
        "real replays and the real prints of NUAA with their live twins; a clip with no "
        "face in enough frames for one window is left out of its rate. "
        + (
            f"{fig['n_raw']} raw clips of {fig['n_people']} people ({fig['raw_failures']} "
            "with no face). "
            if "n_raw" in fig
            else ""
        )
        + unseen_note(fig),
        "",
        "| Measure | Value |",
        "| :--- | ---: |",
        *(f"| {a} | {b} |" for a, b in rows),
        "",
    ]
