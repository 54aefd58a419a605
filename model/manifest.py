"""The model directory's self-description: ``manifest.json`` beside two ONNX graphs.

A model directory holds::

    encoder.onnx    frames [N, 3, S, S] float32 (normalised RGB)  -> features [N, F]
    head.onnx       features [B, T, F] float32 -> prob_genuine [B], attention [B, T]
    manifest.json   this dataclass

Nothing else is needed to serve or evaluate the model: preprocessing, windowing and the
decision threshold all come from here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from model.config import (
    LEGACY_DETECTOR,
    MOTION_DIM,
    NetworkConfig,
    PreprocessConfig,
    network_from_dict,
    preprocess_dict,
    preprocess_for,
    reads_motion,
)

MANIFEST_NAME = "manifest.json"
ENCODER_NAME = "encoder.onnx"
HEAD_NAME = "head.onnx"
FORMAT_VERSION = 1

# Where the embedded default model lives; `liveness serve` uses it with no flags.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "weights" / "default"


class ManifestError(ValueError):
    """A model directory is missing files or describes itself inconsistently."""


@dataclass
class Manifest:
    name: str
    network: NetworkConfig
    preprocess: PreprocessConfig
    feature_dim: int  # head input width: the encoder's output (encoder_dim), and with
    # a network that reads motion (config.reads_motion) the motion descriptor after it
    threshold: float = 0.5  # score >= threshold -> "genuine"; set at the dev-set EER point
    version: str = ""  # free text; the content hash below identifies the weights exactly
    created: str = ""  # ISO-8601 UTC
    training: dict[str, Any] = field(default_factory=dict)  # data, config, seed, run
    metrics: dict[str, Any] = field(default_factory=dict)  # dev/test metrics
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    # the face detector preprocess.crop.detector names: its weights' file, origin, sha256
    # and licence (model/detectors.py detector_record), written by write_manifest
    detector: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def encoder_dim(self) -> int:
        """The encoder's output width F (feature_dim without the motion descriptor)."""
        return self.feature_dim - (MOTION_DIM if reads_motion(self.network) else 0)

    def __post_init__(self) -> None:
        self.preprocess = preprocess_for(self.preprocess, self.network)  # one input size

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "preprocess": preprocess_dict(self.preprocess)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        try:
            fmt = int(data.get("format_version", FORMAT_VERSION))
            if fmt != FORMAT_VERSION:
                raise ManifestError(
                    f"manifest format {fmt} is not supported (expected {FORMAT_VERSION})"
                )
            network = network_from_dict(data["network"])
            preprocess = PreprocessConfig.from_dict(_with_detector(data["preprocess"]))
            manifest = cls(
                name=str(data["name"]),
                network=network,
                preprocess=preprocess,
                feature_dim=int(data["feature_dim"]),
                threshold=float(data.get("threshold", 0.5)),
                version=str(data.get("version", "")),
                created=str(data.get("created", "")),
                training=dict(data.get("training", {})),
                metrics=dict(data.get("metrics", {})),
                files=dict(data.get("files", {})),
                detector=dict(data.get("detector", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ManifestError):
                raise
            raise ManifestError(f"invalid manifest: {exc!r}") from exc
        manifest.validate()
        return manifest

    def validate(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ManifestError(f"threshold {self.threshold} is outside [0, 1]")
        if self.feature_dim <= 0:
            raise ManifestError("feature_dim must be positive")

    @property
    def model_hash(self) -> str:
        """A short id of the exact weights: hash over the files' hashes."""
        blob = json.dumps(sorted(self.files.items())).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def _with_detector(preprocess: dict[str, Any]) -> dict[str, Any]:
    """The preprocess dict with the crop's detector named: a manifest written before the
    field existed was made with Haar, the only detector then."""
    crop = dict(preprocess.get("crop") or {})
    crop.setdefault("detector", LEGACY_DETECTOR)
    return {**preprocess, "crop": crop}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(model_dir: Path, manifest: Manifest) -> Path:
    """Record the ONNX files' hashes and write manifest.json."""
    model_dir = Path(model_dir)
    manifest.files = {
        name: sha256_file(model_dir / name)
        for name in (ENCODER_NAME, HEAD_NAME)
        if (model_dir / name).exists()
    }
    if not manifest.detector:
        from model.detectors import detector_record

        manifest.detector = detector_record(manifest.preprocess.crop.detector)
    manifest.validate()
    path = model_dir / MANIFEST_NAME
    path.write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=False) + "\n")
    return path


def read_manifest(model_dir: Path, *, verify_files: bool = True) -> Manifest:
    """Load and check a model directory's manifest (and, by default, its files' hashes)."""
    model_dir = Path(model_dir)
    path = model_dir / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(f"{model_dir}: no {MANIFEST_NAME} (is this a model directory?)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc})") from exc
    manifest = Manifest.from_dict(data)
    for name in (ENCODER_NAME, HEAD_NAME):
        file = model_dir / name
        if not file.is_file():
            raise ManifestError(f"{model_dir}: missing {name}")
        if verify_files and name in manifest.files and sha256_file(file) != manifest.files[name]:
            raise ManifestError(f"{file}: content does not match the manifest's sha256")
    return manifest
