"""What ``liveness eval`` writes into its output folder::

metrics.json      every figure (training.evaluate.run.EvaluationResult.to_dict)
report.md         paper-shaped tables (training/evaluate/report.py) and the figures
scores.csv        one row per clip: score, decision, windows, or why it failed
roc.png det.png   per clip and per window
scores.png        clip score histograms with the threshold
window_scores.png window score histograms
attention.png     attention over the first window of a sample clip of each kind
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from model.labels import GENUINE, decide
from training.datasets import DatasetError, parse_spec
from training.evaluate.metrics import EvaluationReport
from training.evaluate.plots import plot_attention, plot_det, plot_roc, plot_score_histogram
from training.evaluate.report import ablation_table, cross_table, format_percent, intra_table
from training.evaluate.run import EvaluationResult, clip_score_set, window_score_set
from training.evaluate.score import ClipOutcome, thumbnail_strip
from training.evaluate.unseen_run import unseen_markdown

SCORE_COLUMNS = (
    "path",
    "label",
    "attack",
    "subject",
    "split",
    "score",
    "decision",
    "windows",
    "window_scores",
    "frames",
    "encoded_frames",
    "status",
    "reason",
)
MAX_LISTED = 20  # misclassified clips listed in report.md


def data_label(spec: str) -> str:
    """A short name of a spec for tables: the last two path parts and its options."""
    try:
        parsed = parse_spec(spec)
    except DatasetError:
        return spec
    name = "/".join(parsed.path.parts[-2:])
    query = spec.partition("?")[2]
    return f"{name}?{query}" if query else name


def write_scores_csv(outcomes: list[ClipOutcome], threshold: float, path: Path) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(SCORE_COLUMNS)
        for o in outcomes:
            r = o.record
            decision = "" if o.score is None else decide(o.score, threshold)
            writer.writerow(
                [
                    str(r.path),
                    r.label,
                    r.attack or "",
                    r.subject,
                    r.split or "",
                    "" if o.score is None else f"{o.score:.6f}",
                    decision,
                    len(o.windows),
                    ";".join(f"{w.score:.6f}" for w in o.windows),
                    o.frames,
                    o.encoded,
                    "scored" if o.acquired else "failure to acquire",
                    o.reason,
                ]
            )
    return path


def flat_metrics(report: EvaluationReport) -> dict[str, float]:
    """A report's rates as one flat dict (per-kind APCER as ``apcer_<kind>``)."""
    keys = ("hter", "acc", "eer", "auc", "apcer", "bpcer", "acer")
    out = {k: getattr(report, k) for k in keys}
    out.update({f"apcer_{k}": v for k, v in report.apcer_per_attack.items()})
    return out


def metric_rows(report: EvaluationReport) -> list[tuple[str, str]]:
    rows = [("hter", "HTER(%)"), ("acc", "ACC(%)"), ("eer", "EER(%)"), ("auc", "AUC(%)")]
    rows += [(f"apcer_{k}", f"APCER {k}(%)") for k in report.apcer_per_attack]
    rows += [("apcer", "APCER max(%)"), ("bpcer", "BPCER(%)"), ("acer", "ACER(%)")]
    return rows


def _train_label(result: EvaluationResult) -> str | None:
    """The training data set when it differs from the evaluated one (a cross test)."""
    spec = result.manifest.training.get("data", {}).get("train", {}).get("spec")
    if not spec:
        return None
    try:
        same = parse_spec(spec).path.resolve() == parse_spec(result.data).path.resolve()
    except DatasetError:
        return None
    return None if same else data_label(spec)


def _paper_table(result: EvaluationResult) -> tuple[str, str]:
    name, test = result.manifest.name, data_label(result.data)
    hter_acc = {"hter": result.clips.hter, "acc": result.clips.acc}
    train = _train_label(result)
    if train is None:
        return "Intra-test (the paper's Table 1 shape)", intra_table({test: {name: hter_acc}})
    return "Cross-test (the paper's Table 2 shape)", cross_table({train: {test: {name: hter_acc}}})


def _listing(title: str, ids: list[str]) -> list[str]:
    if not ids:
        return [f"- {title}: none"]
    shown = ", ".join(f"`{Path(i).parent.name}/{Path(i).name}`" for i in ids[:MAX_LISTED])
    more = f" and {len(ids) - MAX_LISTED} more" if len(ids) > MAX_LISTED else ""
    return [f"- {title} ({len(ids)}): {shown}{more}"]


def report_markdown(result: EvaluationResult, figures: dict[str, Path]) -> str:
    m, c = result.manifest, result.to_dict()["counts"]
    source = (
        f"the EER point of the dev set `{data_label(result.dev)}` (paper protocol)"
        if result.dev
        else "the model's manifest (set at its dev EER by `liveness export`)"
    )
    title, table = _paper_table(result)
    nr = result.non_response()
    lines = [
        f"# Evaluation of `{m.name}` on `{data_label(result.data)}`",
        "",
        f"Model `{result.model_dir}` (weights {m.model_hash}): {m.network.backbone} encoder, "
        f"{m.network.input_size} px, windows of {m.preprocess.window.length} frames at "
        f"{m.preprocess.window.fps:g} fps, magnifier {'on' if m.preprocess.magnifier.enabled else 'off'}. "
        f"Every clip scored through ONNX Runtime by `model.runtime.score_clip` "
        f"({result.seconds:.1f} s).",
        "",
        f"Threshold {result.threshold:.4f} from {source}. Clips: {c['clips']}, scored "
        f"{c['scored']}, failures to acquire {c['failed']}.",
        "",
        f"## {title}",
        "",
        table,
        "## Every metric at the threshold",
        "",
        "Per clip: the clip score (mean of its windows). Per window: each window's score "
        "against the same threshold. Failures to acquire are left out here (ISO/IEC 30107-3 "
        "PAD-subsystem rates) and reported below.",
        "",
        ablation_table(
            {"per clip": flat_metrics(result.clips), "per window": flat_metrics(result.windows)},
            ["per clip", "per window"],
            metric_rows(result.clips),
        ),
        "## Failures to acquire",
        "",
        f"BPNRR {format_percent(nr['bpnrr'])} %; APNRR "
        + (
            ", ".join(f"{k} {format_percent(v)} %" for k, v in nr["apnrr_per_attack"].items())
            or "-"
        )
        + ". Counted as spoof decisions (the service rejects a clip it cannot score): HTER "
        f"{format_percent(result.with_failures_rejected()['hter'])} %, ACER "
        f"{format_percent(result.with_failures_rejected()['acer'])} %.",
        "",
        *(f"- `{f.record.path.name}` ({f.kind}): {f.reason}" for f in result.failures),
        "",
        *unseen_markdown(result.unseen),
        "## Errors at the threshold",
        "",
        *_listing("spoofs accepted", result.clips.false_accepts),
        *_listing("genuine clips rejected", result.clips.false_rejects),
        "",
        "## Figures",
        "",
        *(f"![{name}]({path.name})" for name, path in figures.items()),
        "",
    ]
    return "\n".join(lines)


def write_figures(result: EvaluationResult, out: Path) -> dict[str, Path]:
    clips, windows = clip_score_set(result.outcomes), window_score_set(result.outcomes)
    systems = {"per clip": clips, "per window": windows}
    figures = {
        "ROC": plot_roc(systems, out / "roc.png", title=f"ROC: {result.manifest.name}"),
        "DET": plot_det(systems, out / "det.png", title=f"DET: {result.manifest.name}"),
        "clip scores": plot_score_histogram(
            clips, result.threshold, out / "scores.png", title="Clip scores"
        ),
        "window scores": plot_score_histogram(
            windows, result.threshold, out / "window_scores.png", title="Window scores"
        ),
    }
    samples = [o for o in result.outcomes if o.thumbs and thumbnail_strip(o) is not None]
    samples.sort(key=lambda o: (o.kind != GENUINE, o.kind))  # genuine first
    if samples:
        figures["attention"] = plot_attention(
            [o.windows[0].attention for o in samples],
            out / "attention.png",
            titles=[_sample_title(o, result.threshold) for o in samples],
            thumbnails=[thumbnail_strip(o) for o in samples],
        )
    return figures


def _sample_title(o: ClipOutcome, threshold: float) -> str:
    decision = decide(o.score or 0.0, threshold)
    return (
        f"{o.kind}: {o.record.path.parent.name}/{o.record.path.name}, first window "
        f"score {o.windows[0].score:.3f}, clip {o.score:.3f} -> {decision}"
    )


def _json_ready(value: Any) -> Any:
    """NaN -> None, recursively (JSON has no NaN)."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


def write_outputs(result: EvaluationResult, out: Path) -> dict[str, Path]:
    """Every file of the module docstring into ``out``; returns name -> path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = write_figures(result, out)
    metrics = out / "metrics.json"
    metrics.write_text(json.dumps(_json_ready(result.to_dict()), indent=2) + "\n")
    scores = write_scores_csv(result.outcomes, result.threshold, out / "scores.csv")
    report = out / "report.md"
    report.write_text(report_markdown(result, figures))
    return {"metrics": metrics, "scores": scores, "report": report, **figures}
