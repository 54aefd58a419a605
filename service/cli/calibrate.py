"""Calibrate a site: score its own genuine clips (and attack clips) exactly as the server
scores an upload, report the score distribution, BPCER/APCER by threshold and what the
capture-quality gates would turn away, and write the threshold for a target BPCER to
--out/calibration.json, for LIVENESS_CALIBRATION or `liveness serve --calibration`.

Every video in --genuine and --attacks (mp4, mov, webm, mkv, avi; subfolders included) is
read whole and scored through the server's own pieces with the server's settings
(LIVENESS_* from the environment, as `liveness serve` reads them): ``open_video`` and
``ClipDecoder`` from service/clip.py (max_side, the pixel budget, max_frames,
max_clip_seconds, the ``?fps=`` sampler with --fps), the engine's ``ScoringSession``
(face detector, detector override, gates from ``settings.gate_config()``, encoder) and
its ``finish`` with the server's ``no_face`` / ``too_few_frames`` answers. The encoder is
called directly rather than through the micro-batcher, and the upload time limit
(upload_processing_seconds, a matter of the server's load) is not applied. With
LIVENESS_GATES=off the gates run in observe mode, so the report can say what they would do.

The threshold for the target BPCER is the highest one at which at most that share of the
scored genuine clips is rejected (score below it): the (k+1)-th lowest genuine score, k =
floor(target x clips). --out receives calibration.md (the report), calibration.json and
scores.csv (one row per clip). Exit status: 0 done, 2 an error (no clips, no genuine clip
scored, bad settings or model).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi")  # what the server decodes
DEFAULT_TARGET_BPCER = 0.05
GRID = (0.1, 0.25, 0.5, 0.75, 0.9)  # thresholds always in the table, beside the model's
QUANTILES = (0.0, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 1.0)
GENUINE, ATTACK = "genuine", "attack"


class CalibrateError(RuntimeError):
    """The command cannot run as asked; the message says why."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--genuine",
        required=True,
        type=Path,
        metavar="DIR",
        help="folder of the site's own genuine clips (required)",
    )
    parser.add_argument(
        "--attacks", type=Path, metavar="DIR", help="folder of attack clips (default: none)"
    )
    parser.add_argument(
        "--model",
        type=Path,
        metavar="DIR",
        help="model directory (default: LIVENESS_MODEL_DIR, else the embedded default model)",
    )
    parser.add_argument(
        "--target-bpcer",
        type=_share,
        default=DEFAULT_TARGET_BPCER,
        metavar="SHARE",
        help=f"share of genuine clips the threshold may reject (default {DEFAULT_TARGET_BPCER})",
    )
    parser.add_argument(
        "--fps",
        type=float,
        help="thin each clip to this rate, as a client's ?fps= does (default: every frame)",
    )
    parser.add_argument(
        "--out",
        type=_output_folder,
        metavar="DIR",
        help="output folder (default: runs/calibration/<model name>)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a share in [0, 1)")
    return value


def _output_folder(text: str) -> Path:
    """A folder (made when absent), never a file: --out as the other commands take it
    (training/config.py's output_folder; the serving image has no training package)."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file; --out names a folder")
    return path


# -- clips -----------------------------------------------------------------------------------
@dataclass
class ClipScore:
    """One clip through the server's upload path: its score and gate reasons, or why not."""

    path: Path
    kind: str  # GENUINE or ATTACK
    score: float | None = None
    model_label: str = ""  # score vs the model's threshold alone
    enforced: str = ""  # the outcome with the gates enforced (inconclusive, spoof, ...)
    reasons: list[str] = field(default_factory=list)  # the ClipResult's quality verdict
    frames: int = 0  # frames decoded
    truncated: bool = False  # more frames than max_frames: the first ones were scored
    code: str = ""  # why it was not scored: the server's error code
    message: str = ""

    @property
    def scored(self) -> bool:
        return self.score is not None


def find_clips(folder: Path, what: str) -> list[Path]:
    """The video files under ``folder``, sorted; raises CalibrateError if there are none."""
    if not folder.is_dir():
        raise CalibrateError(f"{what} folder {folder} does not exist (or is not a folder)")
    clips = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and not p.is_dir()
    )
    if not clips:
        raise CalibrateError(
            f"no video files ({', '.join(VIDEO_SUFFIXES)}) in the {what} folder {folder}"
        )
    return clips


def score_file(engine, path: Path, kind: str, fps: float | None = None) -> ClipScore:
    """Score one file as POST /v1/liveness scores its bytes (service/clip.py score_video)."""
    from model.gates import outcome
    from service.clip import ClipDecoder, open_video
    from service.errors import PayloadTooLarge, ServiceError, Unprocessable

    settings = engine.settings
    clip = ClipScore(path, kind)
    try:
        data = path.read_bytes()
    except OSError as exc:
        clip.code, clip.message = "unreadable", f"cannot read the file: {exc.strerror or exc}"
        return clip
    decoder = reader = session = None
    try:
        if len(data) > settings.max_upload_bytes:
            raise PayloadTooLarge(
                f"{len(data)} bytes, over LIVENESS_MAX_UPLOAD_BYTES ({settings.max_upload_bytes})",
                code="payload_too_large",
            )
        reader = open_video(data, settings, settings.max_frames)
        source_fps = reader.info.fps
        thin = fps if fps is not None and fps < source_fps else None
        session = _open_session(engine, thin or source_fps)
        decoder = ClipDecoder(
            reader,
            session,
            fps=thin,
            max_frames=settings.max_frames,
            max_seconds=settings.max_clip_seconds,
        )
        while not decoder.done:
            items = decoder.next_chunk(settings.upload_chunk_frames)
            if items:
                session.complete_unbatched(items)
        clip.frames, clip.truncated = decoder.decoded, decoder.truncated
        if decoder.decoded == 0:
            raise Unprocessable(
                "the container holds no decodable video frames", code="undecodable_video"
            )
        result = session.finish()
    except ServiceError as exc:
        clip.code, clip.message = exc.code, exc.message
        return clip
    finally:
        if session is not None:
            session.close()
        if decoder is not None:
            decoder.close()
        elif reader is not None:
            reader.close()
    clip.score = float(result.score)
    clip.model_label = result.model_label
    clip.reasons = list(result.quality.reasons)
    clip.enforced = outcome(result.model_label, result.quality, _enforced(engine.gates))
    return clip


def _open_session(engine, fps: float):
    from service.engine import ScoringSession

    return ScoringSession(engine, fps, "upload")


def _enforced(gates):
    from dataclasses import replace

    return replace(gates, mode="enforce")


def score_folder(
    engine, clips: Sequence[Path], kind: str, fps: float | None, progress: bool
) -> list[ClipScore]:
    from tqdm import tqdm

    desc = f"{kind} clips"
    return [
        score_file(engine, p, kind, fps)
        for p in tqdm(clips, desc=desc, unit="clip", disable=not progress)
    ]


# -- figures ---------------------------------------------------------------------------------
def bpcer(genuine: Sequence[float], threshold: float) -> float:
    """Share of genuine scores rejected at ``threshold`` (below it)."""
    return sum(s < threshold for s in genuine) / len(genuine) if genuine else math.nan


def apcer(attacks: Sequence[float], threshold: float) -> float:
    """Share of attack scores accepted at ``threshold`` (at or above it)."""
    return sum(s >= threshold for s in attacks) / len(attacks) if attacks else math.nan


def allowed_rejections(target: float, n: int) -> int:
    """How many of ``n`` genuine clips a BPCER of at most ``target`` may reject."""
    return min(n - 1, math.floor(target * n + 1e-9))


def threshold_for_bpcer(genuine: Sequence[float], target: float) -> float:
    """The highest threshold that rejects at most ``target`` of the genuine scores: the
    (k+1)-th lowest score (it passes: score >= threshold is genuine)."""
    if not genuine:
        raise CalibrateError("no genuine clip was scored: no threshold can be measured")
    return sorted(genuine)[allowed_rejections(target, len(genuine))]


def upper_bound(errors: int, n: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound of an error rate seen ``errors`` times in ``n``."""
    from scipy.stats import beta

    if errors >= n:
        return 1.0
    return float(beta.ppf(confidence, errors + 1, n - errors))


def quantiles(scores: Sequence[float]) -> list[float]:
    import numpy as np

    return [float(q) for q in np.quantile(np.asarray(scores, float), QUANTILES)]


@dataclass
class Calibration:
    """Everything the report says."""

    model: dict[str, str]
    manifest_threshold: float
    in_use: tuple[float, str] | None  # the deployment's threshold now, and where it is from
    target_bpcer: float
    genuine: list[ClipScore]
    attacks: list[ClipScore] | None  # None: no --attacks
    threshold: float
    gates: Any  # the GateConfig the clips were scored with
    gates_note: str
    settings_note: str

    def scores(self, kind: str) -> list[float]:
        clips = self.genuine if kind == GENUINE else (self.attacks or [])
        return [c.score for c in clips if c.score is not None]

    @property
    def rejected(self) -> int:
        return sum(s < self.threshold for s in self.scores(GENUINE))

    @property
    def bpcer(self) -> float:
        return bpcer(self.scores(GENUINE), self.threshold)

    @property
    def apcer(self) -> float | None:
        if self.attacks is None or not self.scores(ATTACK):
            return None
        return apcer(self.scores(ATTACK), self.threshold)

    def rows(self) -> list[tuple[float, str]]:
        """(threshold, what it is) for the error-rate table, in increasing order."""
        named: dict[float, list[str]] = {}
        named.setdefault(self.manifest_threshold, []).append("the model's (manifest)")
        if self.in_use is not None:
            named.setdefault(self.in_use[0], []).append(f"in use now ({self.in_use[1]})")
        named.setdefault(self.threshold, []).append(
            f"**for BPCER <= {100 * self.target_bpcer:g} %**"
        )
        for t in GRID:
            named.setdefault(t, [])
        return [(t, ", ".join(named[t])) for t in sorted(named)]

    def json_record(self, manifest) -> dict[str, Any]:
        from service.calibration import calibration_record

        return calibration_record(
            manifest,
            threshold=self.threshold,
            target_bpcer=self.target_bpcer,
            genuine_clips=len(self.scores(GENUINE)),
            attack_clips=len(self.scores(ATTACK)),
            bpcer=self.bpcer,
            apcer=self.apcer,
        )


def _pct(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.1f} %"


def _rate(errors: int, n: int) -> str:
    return f"{_pct(errors / n)} ({errors}/{n})" if n else "n/a"


def threshold_paragraph(cal: Calibration) -> str:
    n = len(cal.scores(GENUINE))
    k = allowed_rejections(cal.target_bpcer, n)
    lines = [
        f"For a BPCER of at most {100 * cal.target_bpcer:g} %: **threshold {cal.threshold:.4f}**, "
        f"the {_ordinal(k + 1) + ' ' if k else ''}lowest of {n} genuine scores. It rejects "
        f"{_rate(cal.rejected, n)} of the genuine clips; with {n} clips the 95 % upper bound "
        f"of that BPCER is {_pct(upper_bound(cal.rejected, n))}.",
    ]
    if k == 0:
        lines.append(
            f"With {n} genuine clips no rejection fits in {100 * cal.target_bpcer:g} % "
            f"({n} x {cal.target_bpcer:g} < 1): the threshold is the lowest genuine score, and "
            f"at least {math.ceil(1 / cal.target_bpcer) if cal.target_bpcer else '?'} clips "
            "are needed to measure that BPCER at all; collect more genuine clips."
        )
    elif n < 10 / max(cal.target_bpcer, 1e-9):
        lines.append(
            f"It rests on {n} genuine clips, {k} of them rejected: a few more or fewer low scores "
            "move it; a threshold for a BPCER of p is steady with about 10/p genuine clips "
            f"({math.ceil(10 / cal.target_bpcer)} here)."
        )
    else:
        lines.append(f"It rests on {n} genuine clips ({k} of them may be rejected).")
    attacks = cal.scores(ATTACK)
    if cal.attacks is not None:
        if attacks:
            passed = sum(s >= cal.threshold for s in attacks)
            lines.append(
                f"APCER at it: {_rate(passed, len(attacks))} of the attack clips pass "
                f"(95 % upper bound {_pct(upper_bound(passed, len(attacks)))})."
            )
        else:
            lines.append("No attack clip could be scored: no APCER.")
    return " ".join(lines)


def _title(model: dict[str, str]) -> str:
    version = f"version {model['version']}, " if model.get("version") else ""
    return f"# Calibration of {model['name']} ({version}hash {model['hash']})"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def markdown(cal: Calibration) -> str:
    from model.gates import REASONS

    sets = [(GENUINE, cal.genuine)] + ([(ATTACK, cal.attacks)] if cal.attacks is not None else [])
    out = [
        _title(cal.model),
        "",
        cal.settings_note,
        "",
        "## Threshold",
        "",
        threshold_paragraph(cal),
        "",
        "## Scores",
        "",
    ]
    header = ["clips", "scored", "not scored"]
    header += ["min" if q == 0 else "max" if q == 1 else f"{100 * q:g} %" for q in QUANTILES]
    rows = []
    for kind, clips in sets:
        scores = cal.scores(kind)
        qs = [f"{q:.4f}" for q in quantiles(scores)] if scores else ["n/a"] * len(QUANTILES)
        rows.append([kind, str(len(scores)), str(len(clips) - len(scores)), *qs])
    out += _table(header, rows)
    out += ["", "## Error rates by threshold", ""]
    header = ["threshold", "", "BPCER (genuine rejected)"]
    header += ["APCER (attacks accepted)"] if cal.attacks is not None else []
    genuine, attacks = cal.scores(GENUINE), cal.scores(ATTACK)
    rows = []
    for t, what in cal.rows():
        row = [f"{t:.4f}", what, _rate(sum(s < t for s in genuine), len(genuine))]
        if cal.attacks is not None:
            row.append(_rate(sum(s >= t for s in attacks), len(attacks)))
        rows.append(row)
    out += _table(header, rows)
    out += ["", "## Capture-quality gates", "", cal.gates_note, ""]
    header = ["reason", *(f"{kind} clips" for kind, _ in sets), "hint"]
    counts = {kind: Counter(r for c in clips for r in c.reasons) for kind, clips in sets}
    reasons = [r for r in REASONS if any(counts[k][r] for k, _ in sets)]
    if reasons:
        rows = [[f"`{r}`", *(str(counts[k][r]) for k, _ in sets), REASONS[r]] for r in reasons]
        out += _table(header, rows)
        out.append("")
    for kind, clips in sets:
        scored = [c for c in clips if c.scored]
        by = Counter(c.enforced for c in scored if c.reasons)
        out.append(
            f"- {kind}: {sum(1 for c in scored if c.reasons)} of {len(scored)} scored clips "
            f"fail a gate; enforced, {by.get('inconclusive', 0)} would be inconclusive and "
            f"{by.get('spoof', 0)} spoof (static or looped input, policy "
            f"{cal.gates.input_policy})."
        )
    flagged = [c for _, clips in sets for c in clips if c.reasons]
    if flagged:
        out += ["", "Clips that fail a gate:", ""]
        rows = [
            [c.path.name, c.kind, f"{c.score:.4f}", ", ".join(c.reasons), c.enforced]
            for c in flagged
        ]
        out += _table(["clip", "set", "score", "reasons", "outcome enforced"], rows)
    failed = [c for _, clips in sets for c in clips if not c.scored]
    out += ["", "## Clips not scored", ""]
    if failed:
        out += _table(
            ["clip", "set", "reason", "message"],
            [[str(c.path), c.kind, f"`{c.code}`", c.message.replace("|", "/")] for c in failed],
        )
    else:
        out.append("Every clip was scored.")
    truncated = [c for _, clips in sets for c in clips if c.truncated]
    if truncated:
        out += [
            "",
            f"{len(truncated)} clips have more frames than max_frames: their first frames "
            "were scored, as the server does.",
        ]
    return "\n".join(out) + "\n"


def write_scores(path: Path, cal: Calibration) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["clip", "set", "score", "model_label", "outcome_enforced", "reasons",
                    "frames", "truncated", "not_scored", "message"])  # fmt: skip
        for c in [*cal.genuine, *(cal.attacks or [])]:
            score = "" if c.score is None else repr(c.score)
            w.writerow([c.path, c.kind, score, c.model_label, c.enforced, " ".join(c.reasons),
                        c.frames, int(c.truncated), c.code, c.message])  # fmt: skip
    return path


def summary(cal: Calibration) -> str:
    """The lines printed on the terminal: the threshold table and the verdict."""
    genuine, attacks = cal.scores(GENUINE), cal.scores(ATTACK)
    lines = [f"{'threshold':>9}  {'BPCER':>16}" + (f"  {'APCER':>16}" if cal.attacks else "")]
    for t, what in cal.rows():
        line = f"{t:9.4f}  {_rate(sum(s < t for s in genuine), len(genuine)):>16}"
        if cal.attacks is not None:
            line += f"  {_rate(sum(s >= t for s in attacks), len(attacks)):>16}"
        lines.append(f"{line}  {what.replace('**', '')}")
    lines.append(threshold_paragraph(cal).replace("**", ""))
    return "\n".join(lines)


# -- the command -----------------------------------------------------------------------------
def _error(message: str) -> int:
    print(f"liveness calibrate: error: {message}", file=sys.stderr)
    return 2


def _in_use(settings, manifest) -> tuple[tuple[float, str] | None, str]:
    """The threshold the deployment's settings serve now (None: the manifest's), and a
    note when LIVENESS_CALIBRATION names a file that does not fit this model."""
    from service.calibration import CalibrationError, read_calibration

    if settings.threshold is not None:
        return (settings.threshold, "LIVENESS_THRESHOLD"), ""
    if settings.calibration is not None:
        try:
            return (read_calibration(settings.calibration, manifest), "LIVENESS_CALIBRATION"), ""
        except CalibrationError as exc:
            return None, f" LIVENESS_CALIBRATION is set but the server would refuse it: {exc}."
    return None, ""


def calibrate(args: argparse.Namespace, settings) -> tuple[Calibration, Any]:
    from model.runtime import LivenessModel
    from service.engine import LivenessEngine, check_model_dir
    from service.metrics import ServiceMetrics

    genuine_paths = find_clips(args.genuine, "genuine")
    attack_paths = find_clips(args.attacks, "attack") if args.attacks is not None else None
    check_model_dir(settings.model_dir)
    gates_note = (
        f"Gates as LIVENESS_GATES={settings.gates} runs them (input policy "
        f"{settings.gate_input_policy}); counts are of the clips whose verdict names the reason."
    )
    if settings.gates == "off":  # measure what they would do
        settings = settings.model_copy(update={"gates": "observe"})
        gates_note = (
            "LIVENESS_GATES is off: the gates were run in observe mode to show what they "
            "would do with their settings."
        )
    model = LivenessModel(
        settings.model_dir, providers=settings.providers, threads=settings.threads
    )
    engine = LivenessEngine(model, settings, ServiceMetrics())
    in_use, in_use_note = _in_use(settings, model.manifest)
    progress = not args.quiet
    genuine = score_folder(engine, genuine_paths, GENUINE, args.fps, progress)
    attacks = None
    if attack_paths is not None:
        attacks = score_folder(engine, attack_paths, ATTACK, args.fps, progress)
    scores = [c.score for c in genuine if c.score is not None]
    rate = f"thinned to {args.fps:g} fps" if args.fps else "every frame"
    settings_note = (
        f"{len(genuine)} genuine clips from {args.genuine}"
        + (f", {len(attack_paths)} attack clips from {args.attacks}" if attack_paths else "")
        + f"; scored as the server scores an upload: max_side {settings.max_side}, "
        f"max_frames {settings.max_frames}, max_clip_seconds {settings.max_clip_seconds:g}, "
        f"{rate}, face detector {engine.detector}. A clip is genuine at a threshold when its "
        f"score is at or above it.{in_use_note}"
    )
    cal = Calibration(
        model=model.describe(),
        manifest_threshold=model.manifest.threshold,
        in_use=in_use,
        target_bpcer=args.target_bpcer,
        genuine=genuine,
        attacks=attacks,
        threshold=threshold_for_bpcer(scores, args.target_bpcer) if scores else math.nan,
        gates=engine.gates,
        gates_note=gates_note,
        settings_note=settings_note,
    )
    return cal, model.manifest


def run(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # as `liveness serve` does
    from pydantic import ValidationError

    from model.manifest import ManifestError
    from service.calibration import FILE_NAME, write_calibration
    from service.cli.serve import settings_errors
    from service.engine import ModelLoadError, configure_opencv
    from service.settings import Settings

    try:
        settings = Settings(**({"model_dir": args.model} if args.model is not None else {}))
    except ValidationError as exc:
        return _error(f"invalid settings:\n{settings_errors(exc)}")
    configure_opencv()
    try:
        cal, manifest = calibrate(args, settings)
    except (CalibrateError, ModelLoadError, ManifestError) as exc:
        return _error(str(exc))
    out = args.out or Path("runs") / "calibration" / cal.model["name"]
    out.mkdir(parents=True, exist_ok=True)
    report = out / "calibration.md"
    write_scores(out / "scores.csv", cal)
    if not cal.scores(GENUINE):
        report.write_text(markdown_unscored(cal))
        return _error(
            f"none of the {len(cal.genuine)} genuine clips could be scored (reasons in "
            f"{report}); no calibration written"
        )
    report.write_text(markdown(cal))
    path = write_calibration(out / FILE_NAME, cal.json_record(manifest))
    for clip in [*cal.genuine, *(cal.attacks or [])]:
        if not clip.scored:
            print(f"not scored: {clip.path}: {clip.code}: {clip.message}", file=sys.stderr)
    print(summary(cal))
    if allowed_rejections(cal.target_bpcer, len(cal.scores(GENUINE))) == 0:
        print(
            "liveness calibrate: warning: too few genuine clips for this BPCER: the threshold "
            "is their lowest score; collect more before serving it",
            file=sys.stderr,
        )
    print(f"wrote {report}, {path.name} and scores.csv")
    print(f"serve it with: liveness serve --calibration {path}  (or LIVENESS_CALIBRATION={path})")
    return 0


def markdown_unscored(cal: Calibration) -> str:
    """The report when no genuine clip could be scored: the reasons only."""
    rows = [[str(c.path), c.kind, f"`{c.code}`", c.message] for c in cal.genuine]
    lines = [_title(cal.model), "", cal.settings_note, "", "No genuine clip could be scored."]
    lines.append("")
    return "\n".join(lines + _table(["clip", "set", "reason", "message"], rows)) + "\n"
