"""Leave-people-out evaluation: folds of whole sources, per-fold resume, pooled threshold.

The run uses three sources (one of them with two clips) cut to 40 frames at 160 px, a
synthetic set of 4 clips per source, the smoke network and 2 training steps per fold.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from liveness.cli import main
from model.video import read_frames
from tests.helpers import write_clip
from training.datasets import load_dataset
from training.evaluate.crossval import (
    SCORES_NAME,
    CrossValError,
    assign_folds,
    fold_roles,
    pool_report,
    run_cross_validation,
    source_of,
)
from training.evaluate.metrics import eer_threshold
from training.shared_data import SHARED_DATA

# (output stem, shared clip, first frame): "gamma" is one source with two clips.
SOURCES = (
    ("alpha__d0", "real/liveportrait__driving_d0.mp4", 0),
    ("beta__d11", "real/liveportrait__driving_d11.mp4", 0),
    ("gamma__d12", "real/liveportrait__driving_d12.mp4", 0),
    ("gamma__d12_late", "real/liveportrait__driving_d12.mp4", 100),
)
REPLAY = "attacks/zalo_challenge__zalo_0.mp4"
NUAA = {  # a real print attack and its person's live twin, with labels.csv rows
    "nuaa_0001__g00_t00_s01_genuine.mp4": "genuine,genuine",
    "nuaa_0001__g00_t00_s01_print.mp4": "spoof,realprint",
}
FRAMES, SIDE = 40, 160
SETS = [
    "num_threads=1",
    'device="cpu"',
    "max_steps=2",
    "epochs=1",
    "progress=false",
]


def _cut(src: Path, dst: Path, start: int, size: tuple[int, int] = (SIDE, SIDE)) -> Path:
    frames, _, info = read_frames(src, max_frames=start + FRAMES)
    assert len(frames) == start + FRAMES, f"{src}: fewer than {start + FRAMES} frames"
    resized = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames[start:]]
    return write_clip(dst, resized, info.fps, "MJPG")


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    needed = [SHARED_DATA / p for _, p, _ in SOURCES] + [SHARED_DATA / REPLAY]
    needed += [SHARED_DATA / "attacks" / "nuaa" / name for name in NUAA]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        pytest.skip(f"shared clips absent: {missing}")
    from training.synth.dataset import synthesize_dataset

    base = tmp_path_factory.mktemp("cv")
    raw, replays = base / "raw", base / "replays"
    raw.mkdir()
    replays.mkdir()
    for stem, path, start in SOURCES:
        _cut(SHARED_DATA / path, raw / f"{stem}.avi", start)
    _cut(SHARED_DATA / REPLAY, replays / "replay_0.avi", 0, (114, 240))  # portrait phone clip
    nuaa = base / "nuaa"
    nuaa.mkdir()
    for name in NUAA:
        shutil.copy2(SHARED_DATA / "attacks" / "nuaa" / name, nuaa / name)
    lines = ["file,label,kind,source", *(f"{n},{v},copy" for n, v in NUAA.items())]
    (nuaa / "labels.csv").write_text("\n".join(lines) + "\n")
    data = base / "synth"
    synthesize_dataset(
        [raw],
        data,
        seed=0,
        kinds=("print", "replay"),
        variants_per_source=1,
        genuine_variants_per_source=2,
        max_seconds=1.6,
        progress=False,
    )
    return {"base": base, "raw": raw, "replays": replays, "data": data, "nuaa": nuaa}


def _run(material, out: Path, k: int = 3, extra: tuple[str, ...] = (), **kw):
    sets = [*SETS, f'cache_root="{material["base"] / "cache"}"', *extra]
    return run_cross_validation(
        str(material["data"]),
        out,
        k,
        config_file="smoke",
        sets=sets,
        raw=material["raw"],
        replays=material["replays"],
        nuaa=material["nuaa"],
        dev_sources=1,
        progress=False,
        **kw,
    )


def _sources(spec: str) -> set[str]:
    return {source_of(r.subject) for r in load_dataset(spec)}


@pytest.mark.training
def test_folds_hold_whole_sources_out_resume_and_report(material, tmp_path):
    out = tmp_path / "cv"
    one = _run(material, out, only=[1])
    assert one.folds_run == [1] and one.report["folds_done"] == [1]
    assert "folds [0, 2] are not finished" in one.markdown
    first = _run(material, out)
    assert first.folds_run == [0, 2]
    assert all(s["train"] > 0 for s in first.report["fold_seconds"].values())
    held: list[str] = []
    raw_scored: list[str] = []
    still_scored: list[tuple[str, str]] = []
    for f in range(3):
        fold = out / f"fold-{f}"
        roles = json.loads((fold / "sources.json").read_text())
        train, dev = _sources(str(fold / "train.csv")), _sources(str(fold / "dev.csv"))
        test = set(roles["test"])
        assert train and dev and not (train | dev) & test and not train & dev
        held += roles["test"]
        rows = json.loads((fold / "scores.json").read_text())["rows"]
        assert {r["source"] for r in rows if r["role"] in ("test", "raw")} == test
        assert {r["source"] for r in rows if r["role"] == "dev"} == dev
        raw_scored += [Path(r["path"]).stem for r in rows if r["role"] == "raw"]
        assert sum(r["role"] == "replay" for r in rows) == 1  # every fold scores the replay
        nuaa = sorted((r["kind"], r["label"]) for r in rows if r["role"] == "nuaa")
        assert nuaa == [("nuaa_live", "genuine"), ("realprint", "spoof")]  # every fold, too
        stills = [r for r in rows if r["role"] == "still"]
        assert {r["source"] for r in stills} == test  # the held-out people's stills only
        still_scored += [(Path(r["path"]).stem, r["kind"]) for r in stills]
    assert sorted(held) == ["alpha", "beta", "gamma"]  # each source held out exactly once
    assert sorted(raw_scored) == sorted(stem for stem, _, _ in SOURCES)  # each raw clip once
    kinds = ("still", "still_handheld", "still_plain")
    assert sorted(still_scored) == sorted((s, k) for s, _, _ in SOURCES for k in kinds)

    report = json.loads((out / "cv.json").read_text())
    assert report["n_sources"] == 3
    gamma = next(s for s in report["per_source"] if s["source"] == "gamma")
    assert len(gamma["clips"]) == 2
    replay_scores = report["replays"][0]["scores"]
    assert len(replay_scores) == 3 and all(v is not None for v in replay_scores.values())
    assert set(report["apcer_per_attack"]) == {"print", "replay"}  # the synthetic ones
    assert set(report["still_apcer_per_kind"]) == set(kinds) and report["n_still"] == 12
    assert report["n_nuaa_print"] == 3 and report["n_nuaa_live"] == 3  # one of each a fold
    assert report["nuaa_apcer"] in (0.0, 1 / 3, 2 / 3, 1.0)
    markdown = (out / "cv.md").read_text()
    assert "| gamma |" in markdown and "| APCER, still_handheld (from raw clips) |" in markdown
    assert "| APCER, real prints (NUAA) |" in markdown and "12 still attacks" in markdown

    # Resume: finished folds are kept as they are, an unfinished one is redone alone.
    kept = {f: (out / f"fold-{f}" / "scores.json").read_bytes() for f in (0, 1)}
    stamps = {f: (out / f"fold-{f}" / "run" / "last.pt").stat().st_mtime_ns for f in (0, 1)}
    redo = out / "fold-2" / "scores.json"
    before = json.loads(redo.read_text())["rows"]
    redo.unlink()
    again = _run(material, out)
    assert again.folds_run == [2]
    for f in (0, 1):
        assert (out / f"fold-{f}" / "scores.json").read_bytes() == kept[f]
        assert (out / f"fold-{f}" / "run" / "last.pt").stat().st_mtime_ns == stamps[f]
    assert json.loads(redo.read_text())["rows"] == before  # resumed run, same best epoch
    assert _run(material, out).folds_run == []
    with pytest.raises(CrossValError, match="planned differently"):
        _run(material, out, seed=1)


def test_a_learning_curve_point_trains_each_fold_on_n_people(material, tmp_path):
    out = tmp_path / "cv1"
    result = _run(material, out, train_people=1)
    assert result.folds_run == [0, 1, 2] and result.report["plan"]["train_people"] == 1
    assert "each trained on 1 people" in result.markdown
    for f in range(3):
        fold = out / f"fold-{f}"
        described = json.loads((fold / "sources.json").read_text())
        subjects = {r.subject for r in load_dataset(str(fold / "train.csv"))}
        assert len(described["train_people"]) == 1 and subjects == set(described["train_people"])
        assert {source_of(s) for s in subjects} <= set(described["train"])
    # the fold training on gamma drew one of its two people; the plan is kept
    with pytest.raises(CrossValError, match="planned differently"):
        _run(material, out, train_people=0)
    with pytest.raises(CrossValError, match="training people"):
        _run(material, tmp_path / "cv2", train_people=2)
    with pytest.raises(CrossValError, match="train-people"):
        _run(material, tmp_path / "cv3", train_people=-1)


def test_a_plan_written_before_a_setting_existed_still_resumes(material, tmp_path):
    out = tmp_path / "cv"
    _run(material, out, only=[0])
    plan = json.loads((out / "plan.json").read_text())
    del plan["train_people"], plan["config"]["cache_features"]  # an older plan.json
    (out / "plan.json").write_text(json.dumps(plan))
    assert _run(material, out, only=[0]).folds_run == []


def test_a_fold_on_cached_frozen_maps_scores_as_the_plain_fold(material, tmp_path):
    frozen = ("freeze_blocks=2", "augment=false")
    plain = _run(material, tmp_path / "plain", only=[0], extra=frozen)
    cached = _run(material, tmp_path / "cached", only=[0], extra=(*frozen, "cache_features=true"))
    assert list((material["base"] / "cache" / "maps").iterdir())  # the maps were kept

    def scores(result):
        rows = json.loads((result.out / "fold-0" / SCORES_NAME).read_text())["rows"]
        return {(r["role"], r["path"]): r["score"] for r in rows}

    a, b = scores(plain), scores(cached)
    assert a.keys() == b.keys() and any(k[0] == "raw" for k in a)
    assert all((a[k] is None) == (b[k] is None) for k in a)
    diffs = [abs(a[k] - b[k]) for k in a if a[k] is not None]
    assert diffs and max(diffs) < 0.02, max(diffs)  # float16 maps against float32 frames


def test_cli_cv_refuses_what_it_cannot_use(material, tmp_path):
    spec = str(material["data"])
    assert main(["eval", "--data", spec, "--cv", "9", "--out", str(tmp_path), "--quiet"]) == 2
    assert main(["eval", "--data", spec, "--folds", "0", "--quiet"]) == 2


def test_folds_deal_every_source_once():
    sources = [f"s{i}" for i in range(11)]
    folds = assign_folds(sources, 4, seed=3)
    assert sorted(s for f in folds for s in f) == sorted(sources)
    assert sorted(len(f) for f in folds) == [2, 3, 3, 3]
    assert folds == assign_folds(list(reversed(sources)), 4, seed=3)
    assert folds != assign_folds(sources, 4, seed=4)
    for f in range(4):
        roles = fold_roles(folds, f, 2, seed=3)
        assert len(roles["dev"]) == 2 and not set(roles["dev"]) & set(roles["train"])
        assert sorted(roles["dev"] + roles["train"] + roles["test"]) == sorted(sources)
    with pytest.raises(CrossValError):
        assign_folds(sources, 12, seed=0)
    with pytest.raises(CrossValError):
        fold_roles(folds, 0, 8, seed=0)
    assert source_of("ammp__recorded_62c325") == "ammp" and source_of("p07") == "p07"


def _row(fold, role, source, label, score, kind=None, clip=None):
    kind = kind or ("genuine_raw" if role == "raw" else "genuine" if label == "genuine" else None)
    path = clip or f"/x/{source}-{role}-{kind}-{score}.mp4"
    return {
        "fold": fold,
        "role": role,
        "source": source,
        "subject": source,
        "path": path,
        "label": label,
        "kind": kind,
        "score": score,
    }


def test_pooling_thresholds_at_the_pooled_dev_eer():
    g, s = "genuine", "spoof"
    rows = [
        # fold 0's dev alone would put the threshold near 0.82, fold 1's near 0.27
        _row(0, "dev", "d0", g, 0.9),
        _row(0, "dev", "d0", g, 0.8),
        _row(0, "dev", "d0", s, 0.3, "print"),
        _row(0, "dev", "d0", s, 0.85, "print"),
        _row(1, "dev", "d1", g, 0.4),
        _row(1, "dev", "d1", g, 0.35),
        _row(1, "dev", "d1", s, 0.1, "print"),
        _row(1, "dev", "d1", s, 0.2, "replay"),
        _row(0, "raw", "A", g, 0.5),
        _row(0, "raw", "A", g, 0.9),
        _row(1, "raw", "B", g, 0.36),
        _row(1, "raw", "C", g, None),  # no face: not scored, does not pass
        _row(0, "test", "A", g, 0.38),
        _row(1, "test", "B", g, 0.37),
        _row(0, "test", "A", s, 0.2, "print"),
        _row(1, "test", "B", s, 0.4, "print"),
        _row(1, "test", "B", s, 0.1, "replay"),
        _row(0, "replay", "zalo", s, 0.2, "real_replay", "/r/zalo_0.mp4"),
        _row(1, "replay", "zalo", s, 0.5, "real_replay", "/r/zalo_0.mp4"),
    ]
    report = pool_report(rows)
    # pooled dev: FAR = FRR = 1/4 between 0.35 and 0.4 -> the midpoint
    assert report["threshold"] == pytest.approx(0.375)
    assert report["dev_eer"] == pytest.approx(0.25)
    dev = [r for r in rows if r["role"] == "dev"]
    assert (
        report["threshold"]
        == eer_threshold(
            np.array([r["score"] for r in dev]), np.array([r["label"] == g for r in dev], int)
        )[1]
    )
    assert report["bpcer"] == pytest.approx(1 / 3)  # 0.36 of the three scored raw clips
    assert report["apcer_per_attack"] == {"print": 0.5, "replay": 0.0}
    assert report["acer"] == pytest.approx((0.5 + 1 / 3) / 2)
    assert report["auc"] == pytest.approx(8 / 9)
    assert report["bpcer_camera"] == pytest.approx(0.5)
    assert report["replay_apcer"] == pytest.approx(0.5)
    assert report["replays"][0]["rejected_by_every_fold"] is False
    assert report["sources_all_raw_pass"] == pytest.approx(1 / 3)  # A only
    assert report["subjects_all_raw_pass"] == pytest.approx(1 / 3) and report["n_subjects"] == 3
    assert [s["all_pass"] for s in report["per_source"]] == [True, False, False]
    assert report["failures"]["raw"] == 1


def _recode(src: Path, dst: Path) -> None:
    """``src`` rewritten as an MJPG .mov, the container the Replay-Attack release uses."""
    frames, _, info = read_frames(src)
    dst.parent.mkdir(parents=True, exist_ok=True)
    write_clip(dst, frames, info.fps, "MJPG")


@pytest.mark.training
def test_the_same_command_runs_on_a_licensed_data_set_layout(material, tmp_path):
    """Replay-Attack's release layout (real clips of three clients and one print attack
    each, made from the material) through its adapter: the folds are its clients."""
    root = tmp_path / "replayattack"
    synth = load_dataset(str(material["data"]))
    for client, (folder, stem) in enumerate(
        zip(("train", "devel", "test"), ("alpha__d0", "beta__d11", "gamma__d12"), strict=True),
        start=1,
    ):
        real = f"client{client:03d}_session01_webcam_authenticate_controlled_1.mov"
        _recode(material["raw"] / f"{stem}.avi", root / folder / "real" / real)
        attack = next(r for r in synth if r.subject == stem and r.attack == "print")
        name = f"attack_print_client{client:03d}_session01_highdef_photo_controlled.mov"
        _recode(attack.path, root / folder / "attack" / "hand" / name)
    result = run_cross_validation(
        f"replay-attack:{root}",
        tmp_path / "cv",
        3,
        config_file="smoke",
        sets=[*SETS, f'cache_root="{material["base"] / "cache"}"'],
        dev_sources=1,
        progress=False,
    )
    assert result.folds_run == [0, 1, 2]
    report = result.report
    clients = [f"replay-attack:client{c:03d}" for c in (1, 2, 3)]
    assert sorted(s for f in report["plan"]["folds"] for s in f) == clients
    assert [s["source"] for s in report["per_source"]] == clients  # its own genuine clips
    assert set(report["apcer_per_attack"]) == {"print"} and "replays" not in report
