"""Every setting of a training run, in one commented dataclass (nanoGPT style).

A run starts from the defaults below, applies an override file from
``training/configs/`` (TOML, listing only what differs), then ``--variant`` (a paper
ablation) and ``--set key.sub=value`` overrides, in that order. The resolved config is
saved as ``config.json`` in the run directory, in every checkpoint and in the exported
model's manifest, so a run can be repeated and a model traced back to how it was made.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from model.config import (
    MINIFASNET_BACKBONES,
    MINIFASNET_MEAN,
    SILENT_FACE,
    NetworkConfig,
    PreprocessConfig,
    network_from_dict,
    preprocess_dict,
    preprocess_for,
    reads_motion,
)

CONFIGS_DIR = Path(__file__).resolve().parent / "configs"
CONFIG_NAME = "config.json"  # the resolved config inside a run directory
CACHE_ENV = "LIVENESS_CACHE"  # overrides the default preprocessing cache folder
_REPO = Path(__file__).resolve().parents[1]
# In a working copy the cache sits in the repository (.gitignored); an installed package
# uses the current folder instead of writing into site-packages.
DEFAULT_CACHE_ROOT = (
    (_REPO if (_REPO / "pyproject.toml").is_file() else Path.cwd()) / ".cache" / "liveness"
)

# Paper ablations (Tables 1-2): (NetworkConfig.temporal, .attention, MagnifierConfig.enabled).
# M = motion magnification on, A = attention over the LSTM states on.
VARIANTS: dict[str, tuple[str, bool, bool]] = {
    "cnn": ("none", False, False),  # frame-only CNN; clip score = mean of frame scores
    "cnn-m": ("none", False, True),
    "cnn-lstm": ("lstm", False, False),  # LSTM states averaged
    "cnn-lstm-m": ("lstm", False, True),
    "cnn-lstm-a": ("lstm", True, False),
    "cnn-lstm-am": ("lstm", True, True),  # the full model
}


class ConfigError(ValueError):
    """A training config that is malformed or asks for something impossible."""


@dataclass(frozen=True)
class TrainConfig:
    # -- data: data set specs as training.datasets.load_dataset reads them ----------------
    train_data: str = ""  # clips to train on, e.g. "/data/synth?split=train"
    dev_data: str = ""  # clips for early stopping and the decision threshold (EER point)
    test_data: str = ""  # optional: clips scored once with the best checkpoint at the end
    # -- model ---------------------------------------------------------------------------
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)  # crop, EVM, window
    network: NetworkConfig = field(default_factory=NetworkConfig)  # CNN-LSTM shape
    init_weights: str = ""  # encoder start: "" = random; "imagenet" = the pinned ImageNet
    # MobileNetV2 (backbone mobilenet_v2; `make pretrained` fetches it); or a path to a
    # torchvision-named state dict of the backbone (vgg16 / vgg16_bn or mobilenet_v2)
    freeze_blocks: int = 0  # leading modules of the encoder's `features` stack kept fixed
    # (weights and BatchNorm statistics): torchvision indices, e.g. 7 = MobileNetV2's stem
    # and its first six inverted residuals (stride 8); 0 = fine-tune everything
    cache_features: bool = False  # compute the frozen modules' maps once per frame and
    # train the rest on them (training/train/features.py): same weights, far cheaper; needs
    # freeze_blocks > 0 and augment = false (augmentation acts on pixels)
    feature_copies: int = 0  # with cache_features: appearance-augmented renderings of each
    # training clip (training/train/augment.py), encoded too; windows are drawn from all of them
    # -- optimisation ----------------------------------------------------------------------
    epochs: int = 30  # passes over the training windows (class-balanced draws)
    batch_size: int = 8  # windows per optimizer step (summed over all DDP ranks)
    lr: float = 1e-3  # Adam learning rate (the paper fine-tunes VGG-16 at 1e-5)
    weight_decay: float = 1e-4  # Adam L2 penalty
    lr_schedule: str = "cosine"  # "cosine" (to 0 over the run, per step) or "constant"
    grad_clip: float = 5.0  # max global gradient norm (LSTMs spike); 0 = no clipping
    frame_loss_weight: float = 1.0  # lambda of the joint loss: CE(clip) + lambda * CE(frames)
    motion_loss_weight: float = 0.0  # + this * CE(the motion stream's own logits), for
    # network.motion "flow_stream": the stream learns what motion alone tells
    window_stride: int = 4  # encoded frames between the starts of two training windows
    balance_classes: bool = True  # draw genuine and spoof windows equally often
    # -- augmentation, identical for every frame of a window --------------------------------
    augment: bool = True
    flip_prob: float = 0.5  # probability of a horizontal flip
    brightness: float = 0.1  # added offset drawn from U(-b, b), as a fraction of 255
    contrast: float = 0.1  # gain drawn from U(1 - c, 1 + c) around the window's mean
    # -- run control ---------------------------------------------------------------------
    seed: int = 0  # seeds python, numpy, torch, window draws and augmentation
    patience: int = 5  # stop after this many epochs without a lower dev EER; 0 = never
    min_delta: float = 0.0  # a dev EER must drop by more than this to count as better
    max_steps: int = 0  # stop after this many optimizer steps in all; 0 = no limit
    num_threads: int = 0  # torch CPU threads per process; 0 = cores / processes
    device: str = "auto"  # "auto" (CUDA when available), "cpu" or "cuda"
    cache_root: str = ""  # preprocessing cache; "" = $LIVENESS_CACHE or <repo>/.cache/liveness
    cache_workers: int = 1  # processes that fill the preprocessing cache
    eval_batch_size: int = 32  # windows per forward pass when scoring the dev set
    progress: bool = True  # tqdm bars

    def __post_init__(self) -> None:  # the crop follows network.input_size
        object.__setattr__(self, "preprocess", preprocess_for(self.preprocess, self.network))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "preprocess": preprocess_dict(self.preprocess)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        config = merge(cls(), data)
        validate(config)
        return config

    def resolved_cache_root(self) -> Path:
        if self.cache_root:
            return Path(self.cache_root)
        return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE_ROOT)


_SECTIONS = {"preprocess", "network"}


def merge(config: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """``config`` with the (possibly nested) values of ``overrides`` replaced.

    Not validated: several overrides may be needed before the whole is consistent
    (e.g. backbone and init_weights); ``validate`` the result.
    """
    known = {f.name: f for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise ConfigError(f"unknown training config keys {unknown}; known: {sorted(known)}")
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key == "preprocess":
            changes[key] = _merge_section(asdict(config.preprocess), value, key)
            changes[key] = _build(PreprocessConfig.from_dict, changes[key], key)
        elif key == "network":
            merged = _merge_section(asdict(config.network), value, key)
            changes[key] = _build(network_from_dict, merged, key)
        else:
            changes[key] = _coerce(key, value, getattr(config, key))
    return dataclasses.replace(config, **changes)


def _crop_size(overrides: dict[str, Any]) -> Any:
    """The preprocess.crop.input_size an override asks for, if any (it follows the network)."""
    crop = (overrides.get("preprocess") or {}).get("crop") or {}
    return crop.get("input_size") if isinstance(crop, dict) else None


def _merge_section(base: dict[str, Any], update: Any, where: str) -> dict[str, Any]:
    if not isinstance(update, dict):
        raise ConfigError(f"{where} must be a table of settings, got {update!r}")
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict):
            if not isinstance(out.get(key), dict):
                raise ConfigError(f"{where}.{key} is not a section")
            out[key] = _merge_section(out[key], value, f"{where}.{key}")
        else:
            out[key] = value
    return out


def _build(factory: Any, data: dict[str, Any], where: str) -> Any:
    try:
        return factory(data)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _coerce(key: str, value: Any, current: Any) -> Any:
    """Type-check one top-level value against the default's type (ints widen to float)."""
    if isinstance(current, bool):
        ok = isinstance(value, bool)
    elif isinstance(current, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(current, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ConfigError(f"{key} must be {type(current).__name__}, got {value!r}")
    return value


def validate(config: TrainConfig) -> None:
    """Raise ConfigError for values no run can use."""
    positive = ("epochs", "batch_size", "window_stride", "eval_batch_size", "cache_workers")
    for name in positive:
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be at least 1, got {getattr(config, name)}")
    for name in ("max_steps", "num_threads", "patience", "freeze_blocks", "feature_copies"):
        if getattr(config, name) < 0:
            raise ConfigError(f"{name} must not be negative, got {getattr(config, name)}")
    if config.lr < 0 or config.weight_decay < 0 or config.frame_loss_weight < 0:
        raise ConfigError("lr, weight_decay and frame_loss_weight must not be negative")
    if config.motion_loss_weight < 0:
        raise ConfigError("motion_loss_weight must not be negative")
    if config.motion_loss_weight and config.network.motion != "flow_stream":
        raise ConfigError(
            "motion_loss_weight is the loss of a motion stream: it needs network.motion "
            f"'flow_stream', not {config.network.motion!r}"
        )
    if config.lr_schedule not in ("cosine", "constant"):
        raise ConfigError(f"lr_schedule must be 'cosine' or 'constant', got {config.lr_schedule!r}")
    if config.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda', got {config.device!r}")
    if not 0.0 <= config.flip_prob <= 1.0 or not 0 <= config.brightness < 1:
        raise ConfigError("flip_prob must be in [0, 1] and brightness in [0, 1)")
    if not 0 <= config.contrast < 1:
        raise ConfigError(f"contrast must be in [0, 1), got {config.contrast}")
    if config.preprocess.window.length < 1:
        raise ConfigError("preprocess.window.length must be at least 1")
    if config.seed < 0:
        raise ConfigError(f"seed must not be negative, got {config.seed}")
    if config.cache_features and (config.freeze_blocks < 1 or config.augment):
        raise ConfigError(
            "cache_features needs freeze_blocks > 0 (the frozen modules are what is cached) "
            "and augment = false (cached maps cannot be augmented)"
        )
    if reads_motion(config.network) and config.preprocess.crop.border != "replicate":
        raise ConfigError(
            f"network.motion {config.network.motion!r} reads the face at the centre of its crop: it needs "
            "preprocess.crop.border 'replicate', not "
            f"{config.preprocess.crop.border!r}"
        )
    if config.feature_copies and not config.cache_features:
        raise ConfigError("feature_copies needs cache_features = true")
    if config.init_weights == SILENT_FACE:
        net = config.network
        if net.backbone not in MINIFASNET_BACKBONES:
            raise ConfigError(
                f"init_weights {SILENT_FACE!r} is a MiniFASNet checkpoint: it needs network.backbone "
                f"{' or '.join(MINIFASNET_BACKBONES)}, not {net.backbone!r}"
            )
        plain = all(abs(m) < 1e-6 for m in net.mean) and all(
            abs(v * 255 - 1) < 1e-4 for v in net.std
        )
        if net.channel_order != "bgr" or not plain:
            raise ConfigError(
                f"the {SILENT_FACE!r} weights were trained on BGR [0, 255] crops: set network."
                f"channel_order = 'bgr', mean = {list(MINIFASNET_MEAN)}, std = 1/255 each"
            )
    if config.init_weights == "imagenet" and config.network.backbone != "mobilenet_v2":
        raise ConfigError(
            "init_weights 'imagenet' is the MobileNetV2 checkpoint: it needs "
            f"network.backbone 'mobilenet_v2', not {config.network.backbone!r}"
        )


def apply_variant(config: TrainConfig, variant: str) -> TrainConfig:
    """Set temporal head, attention and magnification as the paper ablation names them."""
    if variant not in VARIANTS:
        raise ConfigError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    temporal, attention, magnify = VARIANTS[variant]
    return merge(  # not validated: see merge
        config,
        {
            "network": {"temporal": temporal, "attention": attention},
            "preprocess": {"magnifier": {"enabled": magnify}},
        },
    )


def variant_of(config: TrainConfig) -> str | None:
    """The ablation name a config matches, or None (e.g. attention set without an LSTM)."""
    key = (config.network.temporal, config.network.attention, config.preprocess.magnifier.enabled)
    return next((name for name, value in VARIANTS.items() if value == key), None)


def parse_set(assignment: str) -> dict[str, Any]:
    """``"network.hidden=64"`` -> ``{"network": {"hidden": 64}}``; the value is read as TOML
    (numbers, true/false, [lists]); anything else is taken as a plain string."""
    key, sep, text = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set expects KEY=VALUE (e.g. network.hidden=64), got {assignment!r}")
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()
    out: dict[str, Any] = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def add_set_option(parser: Any, help: str) -> None:
    """The repeatable ``--set KEY=VALUE`` option (into ``args.sets``; see parse_set)."""
    parser.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help=help
    )


def output_folder(text: str) -> Path:
    """The argparse type of every ``--out``: a folder (made when absent), never a file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file; --out names a folder")
    return path


def find_config_file(name: str) -> Path:
    """A path, or the name of a file in training/configs/ (with or without ``.toml``)."""
    path = Path(name)
    if path.is_file():
        return path
    candidate = CONFIGS_DIR / (name if name.endswith(".toml") else f"{name}.toml")
    if candidate.is_file():
        return candidate
    known = sorted(p.stem for p in CONFIGS_DIR.glob("*.toml"))
    raise ConfigError(f"no config file {name!r}: not a file, nor one of {known}")


def load_overrides(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc


def resolve_config(
    config_file: str | None = None,
    variant: str | None = None,
    sets: list[str] | tuple[str, ...] = (),
    base: TrainConfig | None = None,
) -> TrainConfig:
    """Defaults (or ``base``) <- config file <- variant <- each ``--set``, in that order."""
    config = base or TrainConfig()
    layers = [load_overrides(find_config_file(config_file))] if config_file else []
    if config_file:
        config = merge(config, layers[0])
    if variant:
        config = apply_variant(config, variant)
    for assignment in sets:
        layers.append(parse_set(assignment))
        config = merge(config, layers[-1])
    validate(config)
    asked = {_crop_size(layer) for layer in layers} - {None, config.network.input_size}
    if asked:
        raise ConfigError(
            f"preprocess.crop.input_size {asked.pop()!r}: the crop is resized to "
            f"network.input_size ({config.network.input_size}); set that instead"
        )
    return config


def save_config(config: TrainConfig, run_dir: Path) -> Path:
    path = Path(run_dir) / CONFIG_NAME
    path.write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    return path


def load_config(run_dir: Path) -> TrainConfig:
    """The resolved config a run saved (``config.json``)."""
    path = Path(run_dir) / CONFIG_NAME
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no {CONFIG_NAME} (is this a training run directory?)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
    return TrainConfig.from_dict(data)
