"""`liveness calibrate`: real clips scored through the server's upload path, the threshold
for a target BPCER, the report and calibration.json, and that file served by the server.

The clips are short real ones (the first frames of ../shared/data/real clips, written with
model.video.write_clip; the tests skip when the folder is absent), a still clip (one real
frame repeated: the static_input gate), a synthesised print attack and a clip without a
face, scored by the tiny test model.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from liveness.cli import main
from model.manifest import read_manifest
from model.video import write_clip
from service.calibration import read_calibration
from service.cli.calibrate import allowed_rejections, threshold_for_bpcer
from service.engine import load_model
from service.settings import Settings
from tests.helpers import real_frames
from tests.service.support import CLIP_FRAMES, make_app


@pytest.fixture(autouse=True)
def _small_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command reads LIVENESS_* as the server does: CPU, one thread, no stray setting."""
    monkeypatch.setenv("LIVENESS_PROVIDERS", "cpu")
    monkeypatch.setenv("LIVENESS_THREADS", "1")
    for name in ("LIVENESS_THRESHOLD", "LIVENESS_CALIBRATION", "LIVENESS_MODEL_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def site(real_clip_paths, genuine_mp4, attack_mp4, no_face_mp4, tmp_path_factory) -> Path:
    """genuine/: three short real clips, a still one, one without a face and an unreadable
    link; attacks/: a synthesised print attack."""
    root = tmp_path_factory.mktemp("site")
    genuine, attacks = root / "genuine", root / "attacks"
    (genuine / "person2").mkdir(parents=True)  # subfolders are searched
    attacks.mkdir()
    (genuine / "a.mp4").write_bytes(genuine_mp4.read_bytes())
    others = [p for p in real_clip_paths if "d11" not in p.name][:2]
    for i, path in enumerate(others):
        frames, fps = real_frames(path, CLIP_FRAMES, max_side=256)
        write_clip(genuine / "person2" / f"b{i}.mp4", frames, fps)
    frames, fps = real_frames(genuine_mp4, 1, max_side=256)
    write_clip(genuine / "still.mp4", [frames[0]] * CLIP_FRAMES, fps)
    (genuine / "no_face.mp4").write_bytes(no_face_mp4.read_bytes())
    (genuine / "gone.mp4").symlink_to(root / "nowhere.mp4")
    (genuine / "notes.txt").write_text("not a video")
    (attacks / "print.mp4").write_bytes(attack_mp4.read_bytes())
    return root


@pytest.fixture(scope="module")
def calibrated(site: Path, tiny_model_dir: Path, tmp_path_factory) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("calibration") / "out"
    mp = pytest.MonkeyPatch()
    mp.setenv("LIVENESS_PROVIDERS", "cpu")
    mp.setenv("LIVENESS_THREADS", "1")
    try:
        rc = main(
            ["calibrate", "--genuine", str(site / "genuine"), "--attacks", str(site / "attacks"),
             "--model", str(tiny_model_dir), "--target-bpcer", "0.25", "--out", str(out),
             "--quiet"]
        )  # fmt: skip
    finally:
        mp.undo()
    return rc, out


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "scores.csv") as f:
        return {Path(r["clip"]).name: r for r in csv.DictReader(f)}


def test_the_threshold_rejects_at_most_the_target_share(calibrated, tiny_model_dir):
    rc, out = calibrated
    assert rc == 0
    record = json.loads((out / "calibration.json").read_text())
    manifest = read_manifest(tiny_model_dir)
    rows = _rows(out)
    genuine = sorted(
        float(r["score"]) for r in rows.values() if r["set"] == "genuine" and r["score"]
    )
    assert len(genuine) == 4  # a.mp4, b0, b1 and the still clip; no_face and gone are not
    assert record["kind"] == "liveness-calibration" and record["version"] == 1
    assert record["model"] == {"name": manifest.name, "version": manifest.version,
                               "hash": manifest.model_hash}  # fmt: skip
    assert record["genuine_clips"] == 4 and record["attack_clips"] == 1
    assert record["target_bpcer"] == 0.25
    # 4 clips x 0.25: one may be rejected -> the second lowest score
    assert record["threshold"] == genuine[1]
    assert record["bpcer"] == 0.25
    attack = float(rows["print.mp4"]["score"])
    assert record["apcer"] == (1.0 if attack >= record["threshold"] else 0.0)
    assert record["created"].endswith("Z")


def test_the_report_lists_gates_and_clips_not_scored(calibrated):
    _, out = calibrated
    report = (out / "calibration.md").read_text()
    for section in ("## Threshold", "## Scores", "## Error rates by threshold",
                    "## Capture-quality gates", "## Clips not scored"):  # fmt: skip
        assert section in report
    assert "the model's (manifest)" in report and "for BPCER <= 25 %" in report
    rows = _rows(out)
    assert rows["no_face.mp4"]["not_scored"] == "no_face"
    assert rows["gone.mp4"]["not_scored"] == "unreadable"
    assert "notes.txt" not in rows
    assert "`no_face`" in report and "`unreadable`" in report
    # the still clip: the static_input gate, enforced as spoof (the default policy)
    assert rows["still.mp4"]["reasons"] == "static_input"
    assert rows["still.mp4"]["outcome_enforced"] == "spoof"
    assert "| `static_input` | 1 | 0 |" in report
    # the table and the counts are the clips' verdicts (a 256 px real clip may have a face
    # under the face_too_small floor: counted, not assumed away)
    flagged = [r for r in rows.values() if r["set"] == "genuine" and r["reasons"]]
    inconclusive = sum(r["outcome_enforced"] == "inconclusive" for r in flagged)
    assert (
        f"genuine: {len(flagged)} of 4 scored clips fail a gate; enforced, {inconclusive} would "
        f"be inconclusive and {len(flagged) - inconclusive} spoof"
    ) in report
    for r in flagged:
        assert f"| {Path(r['clip']).name} | genuine |" in report


def test_the_scores_are_the_servers(calibrated, site, tiny_model_dir):
    """The command's score for a clip is what POST /v1/liveness answers for its bytes."""
    _, out = calibrated
    rows = _rows(out)
    with TestClient(make_app(tiny_model_dir)) as client:
        for name in ("a.mp4", "still.mp4"):
            clip = next((site / "genuine").rglob(name))
            r = client.post(
                "/v1/liveness", content=clip.read_bytes(), headers={"content-type": "video/mp4"}
            )
            assert r.status_code == 200, r.text
            assert float(rows[name]["score"]) == pytest.approx(r.json()["score"], abs=1e-5)
            assert rows[name]["model_label"] == r.json()["model_label"]


def test_the_file_round_trips_into_the_server(calibrated, tiny_model_dir):
    _, out = calibrated
    path = out / "calibration.json"
    threshold = json.loads(path.read_text())["threshold"]
    assert read_calibration(path, read_manifest(tiny_model_dir)) == threshold
    model = load_model(Settings(model_dir=tiny_model_dir, calibration=path, providers="cpu"))
    assert model.threshold == threshold
    # LIVENESS_THRESHOLD wins over the file
    model = load_model(
        Settings(model_dir=tiny_model_dir, calibration=path, threshold=0.3, providers="cpu")
    )
    assert model.threshold == 0.3
    manifest = read_manifest(tiny_model_dir).threshold
    with TestClient(make_app(tiny_model_dir, calibration=path)) as client:
        ready = client.get("/readyz").json()["threshold"]
    assert ready == {"value": threshold, "manifest": manifest, "override": threshold != manifest}


def test_threshold_for_bpcer_is_the_highest_that_keeps_the_target():
    scores = [0.9, 0.1, 0.5, 0.7, 0.3, 0.8, 0.6, 0.2, 0.4, 0.95]
    for target in (0.0, 0.1, 0.19, 0.2, 0.29, 0.5, 0.99):
        t = threshold_for_bpcer(scores, target)
        assert sum(s < t for s in scores) <= target * len(scores) + 1e-9
        above = min((s for s in scores if s > t), default=math.inf)
        assert sum(s < above for s in scores) > target * len(scores)  # any higher: too many
    assert allowed_rejections(0.29, 100) == 29  # not 28 from 0.29 * 100 = 28.999...


def _calibrate(*args: str) -> int:
    return main(["calibrate", *args, "--quiet"])


def test_a_missing_or_empty_folder_is_an_error(tmp_path, tiny_model_dir, capsys):
    model = ["--model", str(tiny_model_dir), "--out", str(tmp_path / "out")]
    assert _calibrate("--genuine", str(tmp_path / "absent"), *model) == 2
    assert "genuine folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no clips")
    assert _calibrate("--genuine", str(tmp_path / "empty"), *model) == 2
    assert "no video files" in capsys.readouterr().err
    assert not (tmp_path / "out" / "calibration.json").exists()


def test_no_genuine_clip_scored_writes_no_calibration(
    tmp_path, no_face_mp4, tiny_model_dir, capsys
):
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "empty_room.mp4").write_bytes(no_face_mp4.read_bytes())
    (tmp_path / "g" / "broken.avi").write_bytes(b"RIFF not really a video")
    out = tmp_path / "out"
    rc = _calibrate(
        "--genuine", str(tmp_path / "g"), "--model", str(tiny_model_dir), "--out", str(out)
    )
    assert rc == 2
    assert "none of the 2 genuine clips could be scored" in capsys.readouterr().err
    assert not (out / "calibration.json").exists()
    report = (out / "calibration.md").read_text()
    assert "`no_face`" in report and "`undecodable_video`" in report


def test_bad_arguments_are_refused(tmp_path, tiny_model_dir):
    for bad in ("1.0", "-0.1", "five"):
        with pytest.raises(SystemExit) as exc:
            _calibrate("--genuine", str(tmp_path), "--target-bpcer", bad)
        assert exc.value.code == 2
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit):
        _calibrate("--genuine", str(tmp_path), "--out", str(tmp_path / "file"))


def test_a_model_that_is_not_there_is_an_error(tmp_path, genuine_mp4, capsys):
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "a.mp4").write_bytes(genuine_mp4.read_bytes())
    rc = _calibrate("--genuine", str(tmp_path / "g"), "--model", str(tmp_path / "no_model"))
    assert rc == 2
    assert "does not exist" in capsys.readouterr().err


def test_frames_are_thinned_like_the_servers_fps(tmp_path, genuine_mp4, tiny_model_dir):
    """--fps is the upload's ?fps=: the same score as the server gives with it."""
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "a.mp4").write_bytes(genuine_mp4.read_bytes())
    out = tmp_path / "out"
    rc = _calibrate("--genuine", str(tmp_path / "g"), "--model", str(tiny_model_dir),
                    "--fps", "15", "--out", str(out))  # fmt: skip
    assert rc == 0
    score = float(_rows(out)["a.mp4"]["score"])
    with TestClient(make_app(tiny_model_dir)) as client:
        r = client.post(
            "/v1/liveness?fps=15",
            content=genuine_mp4.read_bytes(),
            headers={"content-type": "video/mp4"},
        )
    assert r.status_code == 200, r.text
    assert score == pytest.approx(r.json()["score"], abs=1e-5)
