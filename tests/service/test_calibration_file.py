"""calibration.json as the server reads it (service/calibration.py): every file it must
refuse, with a message that says what to do, and the refusal at start-up (load_model and
`liveness serve --calibration`). The embedded default model's manifest is the served one:
no export, no torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from model.manifest import DEFAULT_MODEL_DIR, read_manifest
from service.calibration import (
    CalibrationError,
    calibration_record,
    read_calibration,
    write_calibration,
)
from service.engine import ModelLoadError, load_model
from service.settings import Settings
from tests.service.support import REPO_ROOT

pytestmark = pytest.mark.skipif(
    not DEFAULT_MODEL_DIR.is_dir(),
    reason=f"the embedded default model is absent ({DEFAULT_MODEL_DIR})",
)


@pytest.fixture(scope="module")
def manifest():
    return read_manifest(DEFAULT_MODEL_DIR)


def _record(manifest, **changes) -> dict:
    record = calibration_record(
        manifest, threshold=0.25, target_bpcer=0.05, genuine_clips=40, attack_clips=0,
        bpcer=0.05, apcer=None,
    )  # fmt: skip
    return {**record, **changes}


def _file(tmp_path: Path, content) -> Path:
    path = tmp_path / "calibration.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_round_trip(tmp_path, manifest):
    path = write_calibration(tmp_path / "calibration.json", _record(manifest))
    assert read_calibration(path, manifest) == 0.25
    data = json.loads(path.read_text())
    assert data["model"] == {"name": manifest.name, "version": manifest.version,
                             "hash": manifest.model_hash}  # fmt: skip
    assert data["apcer"] is None and data["attack_clips"] == 0


@pytest.mark.parametrize("threshold", [0.0, 1.0, 0, 1])
def test_the_ends_of_the_range_are_thresholds(tmp_path, manifest, threshold):
    assert read_calibration(_file(tmp_path, _record(manifest, threshold=threshold)), manifest) == (
        threshold
    )


def test_a_missing_file(tmp_path, manifest):
    with pytest.raises(CalibrationError, match="does not exist: run `liveness calibrate`"):
        read_calibration(tmp_path / "absent.json", manifest)


def test_an_unreadable_file(tmp_path, manifest):
    with pytest.raises(CalibrationError, match="cannot read calibration file"):
        read_calibration(tmp_path, manifest)  # a folder
    path = tmp_path / "binary.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CalibrationError, match="cannot read calibration file"):
        read_calibration(path, manifest)


@pytest.mark.parametrize("text", ["", "{", "threshold: 0.3", '{"kind": "liveness-calibration",}'])
def test_bad_json(tmp_path, manifest, text):
    with pytest.raises(CalibrationError, match="is not valid JSON .*run `liveness calibrate`"):
        read_calibration(_file(tmp_path, text), manifest)


@pytest.mark.parametrize("content", [[0.3], 0.3, {"threshold": 0.3}, {"kind": "liveness-model"}])
def test_not_a_calibration_file(tmp_path, manifest, content):
    with pytest.raises(CalibrationError, match="is not a calibration file"):
        read_calibration(_file(tmp_path, content), manifest)


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_another_version(tmp_path, manifest, version):
    with pytest.raises(CalibrationError, match="this server reads version 1"):
        read_calibration(_file(tmp_path, _record(manifest, version=version)), manifest)


@pytest.mark.parametrize("threshold", [1.5, -0.1, "0.5", True, None, float("nan"), float("inf")])
def test_a_threshold_out_of_range(tmp_path, manifest, threshold):
    with pytest.raises(CalibrationError, match=r"is not a number in \[0, 1\]"):
        read_calibration(_file(tmp_path, _record(manifest, threshold=threshold)), manifest)


@pytest.mark.parametrize(
    "model", [{"name": "other", "version": "2", "hash": "0123456789ab"}, {}, None]
)
def test_a_file_for_another_model(tmp_path, manifest, model):
    with pytest.raises(CalibrationError, match="not on the served model") as exc:
        read_calibration(_file(tmp_path, _record(manifest, model=model)), manifest)
    assert manifest.model_hash in str(exc.value)


def test_load_model_refuses_a_bad_file_and_the_threshold_setting_wins(tmp_path, manifest):
    other = _file(tmp_path, _record(manifest, model={"name": "other", "hash": "0123456789ab"}))
    settings = Settings(model_dir=DEFAULT_MODEL_DIR, calibration=other, providers="cpu")
    with pytest.raises(ModelLoadError, match="measured on model other"):
        load_model(settings)
    # LIVENESS_THRESHOLD set: the file is not used (the threshold wins)
    model = load_model(settings.model_copy(update={"threshold": 0.4, "threads": 1}))
    assert model.threshold == 0.4


def _serve(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env = {k: v for k, v in env.items() if k not in ("LIVENESS_THRESHOLD", "LIVENESS_CALIBRATION")}
    cmd = [sys.executable, "-m", "liveness", "serve", "--port", "0", "--providers", "cpu", *args]
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_serve_does_not_start_with_a_file_for_another_model(tmp_path, manifest):
    other = _file(tmp_path, _record(manifest, model={"name": "other", "hash": "0123456789ab"}))
    done = _serve("--calibration", str(other))
    assert done.returncode == 2, done.stderr
    assert "liveness serve: calibration file" in done.stderr
    assert "measured on model other" in done.stderr and "run `liveness calibrate`" in done.stderr


def test_serve_does_not_start_with_a_threshold_out_of_range(tmp_path, manifest):
    done = _serve("--calibration", str(_file(tmp_path, _record(manifest, threshold=2))))
    assert done.returncode == 2, done.stderr
    assert "threshold 2 is not a number in [0, 1]" in done.stderr
