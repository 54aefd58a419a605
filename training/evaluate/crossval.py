"""Leave-people-out evaluation: ``liveness eval --cv K``.

The sources (people) of a data set are dealt into K folds; the source of a clip is its
subject up to the first ``__`` (``ammp__face`` and ``ammp__recorded_62c325`` are one
source), so one source's clips never sit on both sides. Fold f:

- holds out the sources of fold f (test);
- picks ``dev_sources`` of the others, by a seeded draw, for early stopping and the
  threshold (dev), and trains on the rest (train): ``liveness train``'s own loop
  (training/train/loop.py) on those clips, genuine and attacks, into ``OUT/fold-f/run``;
- scores with the best epoch's weights, in torch on the cached crops (clip score = the
  mean P(genuine) over the clip's tile windows, as the service computes it): its dev
  clips, the held-out sources' clips of the data set (camera-processed genuine clips and
  attacks, per kind), the held-out sources' raw genuine clips (``--raw``: the
  recordings themselves, no simulated camera) and every real replay (``--replays``);
- writes ``OUT/fold-f/scores.json``. A fold with that file is done and is not redone
  when the command runs again (a fold whose run stopped part-way resumes its training).

The out-of-fold scores are pooled. The threshold is the EER point of the pooled dev
scores; at it the report gives, on the held-out people: BPCER of the raw genuine clips,
APCER per attack kind, ACER (worst kind's APCER and the raw BPCER), AUC, BPCER of the
camera-processed genuine clips, the real replays' APCER and scores, the share of unseen
sources, and of unseen people (subjects), whose every raw genuine clip passes (a clip
with no face in enough frames does not pass), and a per-source table of every raw
clip's score. ``OUT/cv.md`` and
``OUT/cv.json`` hold it.

Without ``--raw`` the data set's own genuine clips are the raw ones: a licensed data set
(Replay-Attack, OULU-NPU, ... through training/datasets) is recorded by real cameras,
so the same command gives the same report on it. The preprocessing cache
(training/cache.py) is filled once for all clips and shared by the folds.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from model.labels import GENUINE, GENUINE_CLASS, SPOOF, SPOOF_CLASS
from model.network import build_network
from training.cache import PreprocessCache
from training.config import TrainConfig, merge, resolve_config
from training.datasets import load_dataset
from training.evaluate.metrics import EvaluationReport, ScoreSet, eer_threshold, report_at_threshold
from training.evaluate.stills import make_still_attacks
from training.evaluate.unseen import (
    NUAA_LIVE,
    NUAA_ROLE,
    RAW_KIND,
    STILL_ROLE,
    STILLS_SEED,
    nuaa_records,
    raw_records,
    replay_records,
    source_of,
    unseen_figures,
    unseen_note,
    unseen_table_rows,
)
from training.records import ClipRecord
from training.synth.sources import clip_rng
from training.train.data import load_clips, score_clips
from training.train.features import FrozenTail, encode_clips
from training.train.loop import METRICS_NAME, train
from training.train.state import BEST_NAME, load_checkpoint

PLAN_NAME = "plan.json"
SCORES_NAME = "scores.json"
REPORT_NAME = "cv.md"
RESULT_NAME = "cv.json"
ROLES = ("dev", "test", "raw", "replay", STILL_ROLE, NUAA_ROLE)


class CrossValError(ValueError):
    """A leave-people-out run that cannot be planned or continued."""


def record_source(record: ClipRecord) -> str:
    if not record.subject:
        raise CrossValError(f"{record.path}: no subject; folds are made of whole sources")
    return source_of(record.subject)


def assign_folds(sources: Sequence[str], k: int, seed: int) -> list[list[str]]:
    """Sources dealt into ``k`` folds after a seeded shuffle: sizes differ by at most one."""
    people = sorted(set(sources))
    if not 2 <= k <= len(people):
        raise CrossValError(f"--cv {k}: needs 2 <= K <= the {len(people)} sources")
    order = [people[i] for i in clip_rng(seed, "cv-folds").permutation(len(people))]
    return [sorted(order[f::k]) for f in range(k)]


def fold_roles(
    folds: list[list[str]], fold: int, dev_sources: int, seed: int
) -> dict[str, list[str]]:
    """Test = fold ``fold``; dev = ``dev_sources`` of the others (seeded draw); train = rest."""
    others = sorted(s for f, members in enumerate(folds) if f != fold for s in members)
    if not 1 <= dev_sources < len(others):
        raise CrossValError(
            f"dev_sources {dev_sources}: each fold needs at least one dev and one training "
            f"source among the other {len(others)}"
        )
    picked = clip_rng(seed, f"cv-dev-{fold}").permutation(len(others))[:dev_sources]
    dev = sorted(others[i] for i in picked)
    return {
        "test": list(folds[fold]),
        "dev": dev,
        "train": [s for s in others if s not in dev],
    }


def _write_csv(records: Sequence[ClipRecord], path: Path) -> str:
    """An index CSV with absolute paths (training.datasets reads it as a bare path spec)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "attack", "subject", "split"])
        for r in records:
            w.writerow([str(Path(r.path).resolve()), r.label, r.attack or "", r.subject, ""])
    return str(path)


def kind_of(record: ClipRecord, role: str) -> str:
    """genuine_raw, genuine (camera-processed or a data set's own) or the attack kind."""
    if role == "raw":
        return RAW_KIND
    if record.is_genuine:
        return NUAA_LIVE if role == NUAA_ROLE else GENUINE
    return record.attack or SPOOF


@dataclass
class CrossValResult:
    out: Path
    report: dict[str, Any]
    markdown: str
    folds_run: list[int] = field(default_factory=list)  # folds computed by this call
    seconds: float = 0.0


@dataclass
class _Plan:
    data: str
    k: int
    seed: int
    dev_sources: int
    folds: list[list[str]]
    config: dict[str, Any]
    raw: str | None
    replays: str | None
    train_people: int = 0  # 0 = every training person of a fold
    nuaa: str | None = None  # real print attacks and their live twins, scored by every fold

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _check_plan(out: Path, plan: _Plan) -> None:
    path = out / PLAN_NAME
    if path.is_file():
        old = json.loads(path.read_text())
        new = json.loads(json.dumps(plan.to_dict()))  # tuples as JSON lists, as saved
        run_only = ("progress", "num_threads", "device", "cache_root", "cache_workers")
        # a plan written before a setting existed had that setting's default
        old_config = json.loads(json.dumps(TrainConfig.from_dict(old.get("config", {})).to_dict()))
        old = {"train_people": 0, "nuaa": None, **old}
        mine = {**new, "config": _without(new["config"], run_only)}
        theirs = {**old, "config": _without(old_config, run_only)}
        diff = sorted(k for k in mine if mine[k] != theirs.get(k))
        if diff:
            raise CrossValError(
                f"{out} holds a leave-people-out run planned differently (in {diff}); "
                "use a new --out folder"
            )
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plan.to_dict(), indent=2) + "\n")


def _without(d: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in keys}


def run_cross_validation(
    data: str,
    out: Path,
    k: int,
    *,
    config_file: str | None = None,
    sets: Sequence[str] = (),
    raw: Path | None = None,
    replays: Path | None = None,
    dev_sources: int = 0,
    seed: int = 0,
    progress: bool = True,
    only: Sequence[int] | None = None,
    train_people: int = 0,
    nuaa: Path | None = None,
) -> CrossValResult:
    """Plan, run (or resume) the folds, pool and report (module docstring).

    ``dev_sources`` = 0 picks about 15 % of a fold's other sources (at least one).
    ``only`` runs just those folds (e.g. one per call); the report then pools the
    folds finished so far and says which are missing. ``train_people`` > 0 trains each
    fold on that many of its training people (subjects, with all their clips: a seeded
    draw), for a learning curve; dev and test are unchanged. Every raw clip's still
    attacks (training/evaluate/stills.py, seed STILLS_SEED, kept in the cache root's
    ``stills/``) are scored by the fold that holds its person out; ``nuaa`` (a folder with
    labels.csv, training/evaluate/unseen.py) is scored by every fold, never trained on.
    """
    started = time.perf_counter()
    out = Path(out)
    if train_people < 0:
        raise CrossValError(f"--train-people {train_people}: must be 0 (all) or more")
    config = resolve_config(config_file or "default_model", sets=[*sets])
    if not progress:
        config = merge(config, {"progress": False})
    records = load_dataset(data)
    if not records:
        raise CrossValError(f"--data {data!r} holds no clips")
    by_source: dict[str, list[ClipRecord]] = {}
    for r in records:
        by_source.setdefault(record_source(r), []).append(r)
    folds = assign_folds(list(by_source), k, seed)
    wanted = sorted(set(only)) if only else list(range(k))
    if any(not 0 <= f < k for f in wanted):
        raise CrossValError(f"--folds {wanted}: folds are numbered 0 to {k - 1}")
    n_dev = dev_sources or max(1, round(0.15 * (len(by_source) - len(max(folds, key=len)))))
    roles = [fold_roles(folds, f, n_dev, seed) for f in range(k)]  # checks n_dev
    raws = raw_records(raw) if raw else [r for r in records if r.is_genuine]
    unknown = sorted({record_source(r) for r in raws} - set(by_source))
    if unknown:
        raise CrossValError(f"raw clips of sources not in --data: {unknown}")
    reps = replay_records(replays) if replays else []
    prints = nuaa_records(nuaa) if nuaa else []
    plan = _Plan(
        data=data,
        k=k,
        seed=seed,
        dev_sources=n_dev,
        folds=folds,
        config=config.to_dict(),
        raw=str(raw) if raw else None,
        replays=str(replays) if replays else None,
        train_people=train_people,
        nuaa=str(nuaa) if nuaa else None,
    )
    _check_plan(out, plan)
    stills_dir = config.resolved_cache_root() / "stills" / f"seed-{STILLS_SEED}"
    stills = make_still_attacks(raws, stills_dir, seed=STILLS_SEED, progress=progress)
    cache = PreprocessCache(config.resolved_cache_root(), config.preprocess)
    unique = {r.path: r for r in [*records, *raws, *reps, *stills, *prints]}
    cache.build(list(unique.values()), workers=config.cache_workers, progress=progress)

    done: list[int] = []
    bar = tqdm(wanted, desc="folds", unit="fold", disable=not progress)
    for f in bar:
        fold_dir = out / f"fold-{f}"
        if (fold_dir / SCORES_NAME).is_file():
            continue
        bar.set_postfix(fold=f, test=len(roles[f]["test"]))
        extra = {"raw": raws, "replay": reps, STILL_ROLE: stills, NUAA_ROLE: prints}
        _run_fold(f, roles[f], fold_dir, config, by_source, extra, cache, train_people, seed)
        done.append(f)
    bar.close()
    finished = [f for f in range(k) if (out / f"fold-{f}" / SCORES_NAME).is_file()]
    rows = [row for f in finished for row in _load_scores(out / f"fold-{f}", f)]
    report = pool_report(rows)
    report["folds_done"] = finished
    report["plan"] = {
        "data": data,
        "k": k,
        "seed": seed,
        "dev_sources": n_dev,
        "folds": folds,
        "raw": plan.raw,
        "replays": plan.replays,
        "config_file": config_file or "default_model",
        "sets": list(sets),
        "train_people": train_people,
        "nuaa": plan.nuaa,
    }
    report["fold_seconds"] = {str(f): _fold_seconds(out / f"fold-{f}") for f in finished}
    markdown = report_markdown(report)
    (out / RESULT_NAME).write_text(json.dumps(report, indent=2) + "\n")
    (out / REPORT_NAME).write_text(markdown)
    return CrossValResult(out, report, markdown, done, time.perf_counter() - started)


def _run_fold(
    f: int,
    roles: dict[str, list[str]],
    fold_dir: Path,
    config: TrainConfig,
    by_source: dict[str, list[ClipRecord]],
    extra: dict[str, list[ClipRecord]],
    cache: PreprocessCache,
    train_people: int = 0,
    seed: int = 0,
) -> None:
    fold_dir.mkdir(parents=True, exist_ok=True)
    chosen = {role: [r for s in roles[role] for r in by_source[s]] for role in roles}
    people = sorted({r.subject for r in chosen["train"]})
    if train_people:
        if train_people > len(people):
            raise CrossValError(
                f"--train-people {train_people}: fold {f} has only {len(people)} training people"
            )
        order = clip_rng(seed, f"cv-people-{f}").permutation(len(people))
        people = sorted(people[i] for i in order[:train_people])
        chosen["train"] = [r for r in chosen["train"] if r.subject in set(people)]
    specs = {
        "train_data": _write_csv(chosen["train"], fold_dir / "train.csv"),
        "dev_data": _write_csv(chosen["dev"], fold_dir / "dev.csv"),
        "test_data": "",
    }
    described = {**roles, "train_people": people}
    (fold_dir / "sources.json").write_text(json.dumps(described, indent=2) + "\n")
    fold_config = merge(config, specs)
    run_dir = fold_dir / "run"
    result = train(fold_config, run_dir, resume=(run_dir / "last.pt").is_file())
    scoring_started = time.perf_counter()
    best = load_checkpoint(run_dir / BEST_NAME)
    cuda = config.device != "cpu" and torch.cuda.is_available()  # as training chose
    device = torch.device("cuda" if cuda else "cpu")
    net = build_network(config.network)
    net.load_state_dict(best["model"])
    net.to(device).eval()
    held_out = set(roles["test"])
    scored: list[tuple[str, ClipRecord]] = [("dev", r) for r in chosen["dev"]]
    scored += [("test", r) for r in chosen["test"]]
    for role in ("raw", STILL_ROLE):  # held-out people's raw clips and their stills
        scored += [(role, r) for r in extra[role] if record_source(r) in held_out]
    scored += [(role, r) for role in ("replay", NUAA_ROLE) for r in extra[role]]
    clips = load_clips([r for _, r in scored], cache)
    scorer: torch.nn.Module = net
    if config.cache_features:  # the frozen stack's maps, as training computed them
        blocks = config.freeze_blocks
        store = config.resolved_cache_root()
        clips = encode_clips(net, clips, config.network, blocks, device, store=store)
        scorer = FrozenTail(net, blocks).eval()
    scores = score_clips(
        scorer,
        clips,
        config.preprocess.window,
        config.network,
        device,
        config.eval_batch_size,
    )
    rows = [
        {
            "role": role,
            "path": str(r.path),
            "subject": r.subject,
            "source": source_of(r.subject),
            "kind": kind_of(r, role),
            "label": r.label,
            "score": s,
        }
        for (role, r), s in zip(scored, scores, strict=True)
    ]
    payload = {
        "fold": f,
        "sources": roles,
        "best_epoch": best["epoch"],
        "epochs": result.epochs,
        "steps": result.steps,
        "dev_eer_best_epoch": best["dev"].get("dev_eer"),
        # every epoch's time, also those of earlier, interrupted calls (metrics.jsonl)
        "train_seconds": round(_epoch_seconds(run_dir), 1),
        "score_seconds": round(time.perf_counter() - scoring_started, 1),
        "rows": rows,
    }
    tmp = fold_dir / f".{SCORES_NAME}.tmp"
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    tmp.replace(fold_dir / SCORES_NAME)  # the fold counts as done only once complete


def _fold_seconds(fold_dir: Path) -> dict[str, float]:
    payload = json.loads((fold_dir / SCORES_NAME).read_text())
    return {"train": payload["train_seconds"], "score": payload["score_seconds"]}


def _epoch_seconds(run_dir: Path) -> float:
    lines = (run_dir / METRICS_NAME).read_text().splitlines()
    return sum(json.loads(line)["seconds"] for line in lines if line.strip())


def _load_scores(fold_dir: Path, f: int) -> list[dict[str, Any]]:
    payload = json.loads((fold_dir / SCORES_NAME).read_text())
    return [{**row, "fold": f} for row in payload["rows"]]


def _score_set(rows: list[dict[str, Any]]) -> ScoreSet:
    return ScoreSet(
        scores=np.array([r["score"] for r in rows], np.float64),
        labels=np.array(
            [GENUINE_CLASS if r["label"] == GENUINE else SPOOF_CLASS for r in rows], np.int64
        ),
        attacks=[None if r["label"] == GENUINE else r["kind"] for r in rows],
        ids=[f"fold-{r['fold']}:{r['path']}" for r in rows],
    )


def pool_report(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Every figure of the report from the pooled out-of-fold rows (module docstring)."""
    scored = [r for r in rows if r["score"] is not None]
    dev = [r for r in scored if r["role"] == "dev"]
    if len({r["label"] for r in dev}) < 2:
        raise CrossValError("the pooled dev scores lack genuine or spoof clips: no EER point")
    dev_eer, threshold = eer_threshold(*_arrays(dev))
    attacks = [r for r in scored if r["role"] == "test" and r["label"] == SPOOF]
    raw = [r for r in scored if r["role"] == "raw"]
    camera = [r for r in scored if r["role"] == "test" and r["label"] == GENUINE]
    replays = [r for r in scored if r["role"] == "replay"]
    out: dict[str, Any] = {"threshold": threshold, "dev_eer": dev_eer}
    if raw and attacks:
        main = evaluate_at(raw + attacks, threshold, dev_eer)
        out.update(
            bpcer=main.bpcer,
            apcer_per_attack=main.apcer_per_attack,
            apcer=main.apcer,
            acer=main.acer,
            auc=main.auc,
            eer=main.eer,
            n_raw_genuine=main.n_genuine,
            n_attacks=main.n_spoof,
        )
    if camera and attacks:
        cam = evaluate_at(camera + attacks, threshold, dev_eer)
        out.update(bpcer_camera=cam.bpcer, auc_camera=cam.auc, n_camera_genuine=cam.n_genuine)
    if replays:
        accepted = [r for r in replays if r["score"] >= threshold]
        out["replay_apcer"] = len(accepted) / len(replays)
    replay_rows = [r for r in rows if r["role"] == "replay"]
    if replay_rows:
        out["replays"] = _replay_table(replay_rows, threshold)
    out.update(unseen_figures(rows, threshold))
    out["failures"] = {
        role: sum(1 for r in rows if r["role"] == role and r["score"] is None) for role in ROLES
    }
    per_source = _per_source(rows, threshold)
    out["per_source"] = per_source
    out["sources_all_raw_pass"] = (
        sum(s["all_pass"] for s in per_source) / len(per_source) if per_source else None
    )
    out["n_sources"] = len(per_source)
    # people: the subjects (a data set's person ids; a synthetic set's source clips)
    people: dict[str, bool] = {}
    for entry in per_source:
        for c in entry["clips"]:
            people[c["subject"]] = people.get(c["subject"], True) and c["pass"]
    out["subjects_all_raw_pass"] = sum(people.values()) / len(people) if people else None
    out["n_subjects"] = len(people)
    return out


def _arrays(rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    s = np.array([r["score"] for r in rows], np.float64)
    y = np.array([GENUINE_CLASS if r["label"] == GENUINE else SPOOF_CLASS for r in rows], np.int64)
    return s, y


def evaluate_at(rows: list[dict[str, Any]], threshold: float, dev_eer: float) -> EvaluationReport:
    """training.evaluate.metrics' report of ``rows`` at a fixed threshold."""
    return report_at_threshold(_score_set(rows), threshold, dev_eer)


def _per_source(rows: list[dict[str, Any]], threshold: float) -> list[dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["role"] != "raw":
            continue
        entry = table.setdefault(
            r["source"], {"source": r["source"], "fold": r["fold"], "clips": []}
        )
        passed = r["score"] is not None and r["score"] >= threshold
        entry["clips"].append(
            {
                "clip": Path(r["path"]).name,
                "subject": r["subject"],
                "score": r["score"],
                "pass": passed,
            }
        )
    for entry in table.values():
        entry["all_pass"] = all(c["pass"] for c in entry["clips"])
    return [table[s] for s in sorted(table)]


def _replay_table(replays: list[dict[str, Any]], threshold: float) -> list[dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for r in replays:
        entry = table.setdefault(r["path"], {"clip": Path(r["path"]).name, "scores": {}})
        entry["scores"][str(r["fold"])] = r["score"]
    for entry in table.values():  # no face = no decision, which the service rejects
        entry["rejected_by_every_fold"] = all(
            s is None or s < threshold for s in entry["scores"].values()
        )
    return list(table.values())


def _minutes(seconds: dict[str, float]) -> str:
    return f"{seconds['train'] / 60:.1f} + {seconds['score'] / 60:.1f}"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _people_note(train_people: int) -> str:
    return f", each trained on {train_people} people" if train_people else ""


def report_markdown(report: dict[str, Any]) -> str:
    plan = report["plan"]
    missing = [f for f in range(plan["k"]) if f not in report["folds_done"]]
    n_sources = sum(len(plan["folds"][f]) for f in report["folds_done"])
    lines = [
        f"# Leave-people-out evaluation: {plan['k']} folds, {n_sources} sources held out",
        "",
        *(
            [f"**Partial:** folds {missing} are not finished; the figures pool the others.", ""]
            if missing
            else []
        ),
        f"Data `{plan['data']}`, raw genuine clips `{plan['raw'] or 'the data set'}`, real "
        f"replays `{plan['replays'] or 'none'}`, real prints `{plan.get('nuaa') or 'none'}`; config `{plan['config_file']}` "
        f"{' '.join(f'--set {s}' for s in plan['sets'])}; seed {plan['seed']}, "
        f"{plan['dev_sources']} dev sources per fold"
        f"{_people_note(plan.get('train_people', 0))}. Out-of-fold scores pooled; threshold "
        f"{report['threshold']:.4f} at the pooled dev EER ({_pct(report['dev_eer'])}).",
        "",
        "| Measure (unseen people) | Value |",
        "| :--- | ---: |",
    ]
    rows = [
        ("BPCER, raw genuine clips", _pct(report.get("bpcer"))),
        ("BPCER, camera-processed genuine clips", _pct(report.get("bpcer_camera"))),
        *(
            (f"APCER, {kind}", _pct(v))
            for kind, v in sorted(report.get("apcer_per_attack", {}).items())
        ),
        ("ACER (worst APCER, raw BPCER)", _pct(report.get("acer"))),
        ("AUC, raw genuine vs attacks", _pct(report.get("auc"))),
        ("APCER, real replays (every fold's score)", _pct(report.get("replay_apcer"))),
        *unseen_table_rows(report),
        ("Sources whose every raw genuine clip passes", _pct(report["sources_all_raw_pass"])),
        (
            "People (subjects) whose every raw genuine clip passes",
            _pct(report["subjects_all_raw_pass"]),
        ),
    ]
    lines += [f"| {a} | {b} |" for a, b in rows]
    failures = report["failures"]
    lines += [
        "",
        f"Clips with no face in enough frames for one window (not scored; a raw clip among "
        f"them does not pass): dev {failures['dev']}, held-out {failures['test']}, raw "
        f"{failures['raw']}, replays {failures['replay']}. {unseen_note(report)} "
        f"Minutes per fold (training + "
        f"scoring): {', '.join(f'{f}: {_minutes(s)}' for f, s in report['fold_seconds'].items())}.",
        "",
        "## Raw genuine clips, per source",
        "",
        "| Source | Fold | Clip | Score | Passes |",
        "| :--- | ---: | :--- | ---: | :---: |",
    ]
    for entry in report["per_source"]:
        for c in entry["clips"]:
            score = "no face" if c["score"] is None else f"{c['score']:.3f}"
            lines.append(
                f"| {entry['source']} | {entry['fold']} | {c['clip']} | {score} | "
                f"{'yes' if c['pass'] else 'no'} |"
            )
    if report.get("replays"):
        lines += ["", "## Real replays, score of each fold's model", ""]
        lines += ["| Clip | Scores by fold | Rejected by every fold |", "| :--- | :--- | :---: |"]
        for entry in report["replays"]:
            scores = ", ".join(
                f"{f}: {'no face' if s is None else f'{s:.3f}'}" for f, s in entry["scores"].items()
            )
            lines.append(
                f"| {entry['clip']} | {scores} | {'yes' if entry['rejected_by_every_fold'] else 'no'} |"
            )
    return "\n".join(lines) + "\n"


__all__ = [
    "CrossValError",
    "CrossValResult",
    "assign_folds",
    "fold_roles",
    "pool_report",
    "run_cross_validation",
    "source_of",
]
