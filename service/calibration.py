"""The calibration file: a threshold measured on a deployment's own clips, for one model.

``liveness calibrate`` (service/cli/calibrate.py) scores a site's genuine clips (and
attack clips) through the server's upload path and writes ``calibration.json``; the
server reads it at start-up (LIVENESS_CALIBRATION, ``liveness serve --calibration``) and
serves its threshold in place of the manifest's. The file names the model it was measured
on by its content hash: a threshold is a point on one model's score scale, so a file made
for other weights is refused, and the server does not start (docs/calibration.md).

    {"kind": "liveness-calibration", "version": 1,
     "model": {"name": ..., "version": ..., "hash": ...},
     "threshold": 0.23, "target_bpcer": 0.05, "genuine_clips": 120, "attack_clips": 40,
     "bpcer": 0.05, "apcer": 0.1, "created": "2025-01-01T00:00:00Z"}
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model.manifest import Manifest

KIND = "liveness-calibration"
VERSION = 1
FILE_NAME = "calibration.json"
REDO = "run `liveness calibrate` for the served model and point LIVENESS_CALIBRATION (or "
REDO += "--calibration) at the calibration.json it writes, or unset it"


class CalibrationError(ValueError):
    """A calibration file the server cannot use; the message says what to do."""


def calibration_record(
    manifest: Manifest,
    *,
    threshold: float,
    target_bpcer: float,
    genuine_clips: int,
    attack_clips: int,
    bpcer: float,
    apcer: float | None,
    created: datetime | None = None,
) -> dict[str, Any]:
    """The content of calibration.json for a threshold measured on ``manifest``'s model."""
    when = (created or datetime.now(UTC)).astimezone(UTC)
    return {
        "kind": KIND,
        "version": VERSION,
        "model": {
            "name": manifest.name,
            "version": manifest.version,
            "hash": manifest.model_hash,
        },
        "threshold": float(threshold),
        "target_bpcer": float(target_bpcer),
        "genuine_clips": int(genuine_clips),
        "attack_clips": int(attack_clips),
        "bpcer": float(bpcer),
        "apcer": None if apcer is None else float(apcer),
        "created": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def write_calibration(path: Path, record: dict[str, Any]) -> Path:
    path = Path(path)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_calibration(path: Path, manifest: Manifest) -> float:
    """The threshold of the calibration file at ``path``, checked against the served
    model's ``manifest``; raises CalibrationError saying what is wrong and what to do."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise CalibrationError(f"calibration file {path} does not exist: {REDO}") from None
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CalibrationError(f"cannot read calibration file {path} ({why}): {REDO}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalibrationError(
            f"calibration file {path} is not valid JSON ({exc}): {REDO}"
        ) from exc
    if not isinstance(data, dict) or data.get("kind") != KIND:
        kind = data.get("kind") if isinstance(data, dict) else type(data).__name__
        raise CalibrationError(
            f"{path} is not a calibration file (kind {kind!r}, expected {KIND!r}): {REDO}"
        )
    if data.get("version") != VERSION:
        raise CalibrationError(
            f"calibration file {path} has version {data.get('version')!r}; this server reads "
            f"version {VERSION}: {REDO}"
        )
    threshold = data.get("threshold")
    if not _is_number(threshold) or not 0.0 <= threshold <= 1.0:
        raise CalibrationError(
            f"calibration file {path}: threshold {threshold!r} is not a number in [0, 1]: {REDO}"
        )
    model = data.get("model") if isinstance(data.get("model"), dict) else {}
    made_for = model.get("hash")
    if made_for != manifest.model_hash:
        described = f"{model.get('name', '?')} {model.get('version', '')}".strip()
        raise CalibrationError(
            f"calibration file {path} was measured on model {described} (hash {made_for}), "
            f"not on the served model {manifest.name} {manifest.version} (hash "
            f"{manifest.model_hash}); a threshold holds for one model's scores only: {REDO}"
        )
    return float(threshold)
