"""Every number that defines a model and its preprocessing, in one place.

Training writes these into the exported model's ``manifest.json``; serving reads them
back; nothing is configured twice. Each dataclass rebuilds its part from a plain dict
(``from_dict``) so the manifest is the only thing a model directory needs to describe
itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, TypeVar, get_args

T = TypeVar("T")

# Face detectors a model can name (model/detectors.py). A manifest whose crop names none
# was made before the field existed, when Haar was the only one.
DETECTORS = ("blazeface", "haar", "yunet")
CROP_BORDERS = ("replicate", "shift")  # CropConfig.border
LEGACY_DETECTOR = "haar"
# ONNX Runtime execution providers a model is served with (model/runtime.py): "cuda"
# (onnxruntime-gpu, refused without it), "cpu", or "auto" (CUDA when present, else the CPU).
# Here, not in model/runtime.py: the CLIs take them as choices, and must not load OpenCV
# before `liveness serve` sets its decoder limit (OPENCV_IO_MAX_IMAGE_PIXELS).
Provider = Literal["auto", "cpu", "cuda"]
PROVIDER_CHOICES: tuple[Provider, ...] = get_args(Provider)
INPUT_SIZE = 112  # default side of the square network input and of the face crop, px
CHANNEL_ORDERS = ("rgb", "bgr")
# MiniFASNet's input: BGR in [0, 255], no mean/std (x = (v / 255 - 0) / (1 / 255) = v)
MINIFASNET_BACKBONES = ("minifasnet_v2", "minifasnet_v1se")  # model/minifasnet.py's SPECS
SILENT_FACE = "silent-face"  # TrainConfig.init_weights value: their shipped weights
# The motion descriptor (model/motion.py): its width, and where its values usually lie
# (log scale; real clips: flows e^-6.5..e^-3, grey changes e^-5..e^-1): a "flow" network
# reads (descriptor - MOTION_CENTRE) / MOTION_SCALE, about -1..1. Here, not in
# model/motion.py, so the manifest knows the width without loading OpenCV.
MOTION_DIM = 8
# NetworkConfig.motion values whose head reads the descriptor: "flow" beside the appearance
# in the one LSTM, "flow_stream" in a small LSTM of its own whose logits add to the other's
FLOW_MODES = ("flow", "flow_stream")


def reads_motion(network: NetworkConfig) -> bool:
    """Whether a network's head reads the frames' motion descriptors."""
    return network.motion in FLOW_MODES


MOTION_CENTRE = (-5.0,) * 5 + (-3.0,) * 3
MOTION_SCALE = 1.5
MINIFASNET_MEAN = (0.0, 0.0, 0.0)
MINIFASNET_STD = (1 / 255, 1 / 255, 1 / 255)


def _from_dict(cls: type[T], data: dict[str, Any] | None) -> T:
    """Build a dataclass from a dict, ignoring unknown keys and filling defaults."""
    data = data or {}
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
    kwargs = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            continue
        value = data[f.name]
        sub = _nested_types.get((cls.__name__, f.name))
        kwargs[f.name] = _from_dict(sub, value) if sub is not None else value
        if isinstance(kwargs[f.name], list) and f.name in ("mean", "std"):
            kwargs[f.name] = tuple(kwargs[f.name])
    return cls(**kwargs)


@dataclass(frozen=True)
class CropConfig:
    """Face detection, tracking and the extended square crop (paper §4.1)."""

    input_size: int = INPUT_SIZE  # side of the square crop, px; in a model, its network's
    # input_size (preprocess_for): a model declares the size once, as network.input_size
    margin: float = 0.3  # border added on each side, as a fraction of the face box side:
    # crop side = (1 + 2 * margin) * face side, so background around the head is kept
    border: str = "replicate"  # where the crop leaves the frame: "replicate" its edge pixels
    # (the face stays centred), or "shift" the square inside the frame, shrunk to the frame's
    # short side if larger (Silent-Face's crop, which MiniFASNet was trained on); older
    # manifests are "replicate"
    detector: str = "blazeface"  # one of DETECTORS: "blazeface" (bundled weights), "haar"
    # (bundled with OpenCV 4.x) or "yunet" (user-supplied ONNX)
    detect_every: int = 5  # run the detector on every k-th frame, track in between
    smoothing: float = 0.8  # EMA weight of the previous box (0 = follow detections exactly);
    # 0.8 for BlazeFace: on a turning head it halves the box's largest step (2.25 -> 1.14 %
    # of the side) for 0.25 % of the side more lag (scripts/crop_jitter.py); Haar-era
    # manifests name their own 0.6
    max_missed: int = 10  # frames a face may go undetected before the track is lost
    min_face_fraction: float = 0.12  # smallest face side searched, as a fraction of min(H, W)


@dataclass(frozen=True)
class MagnifierConfig:
    """Linear Eulerian magnification of the crop's luminance (research/evm.md §5)."""

    enabled: bool = True
    alpha: float = 10.0  # magnification factor of the amplified levels
    lambda_c: float = 16.0  # spatial cut-off wavelength at the network input scale, px
    f_lo: float = 0.4  # temporal pass band, Hz (causal 1st-order Butterworth band-pass)
    f_hi: float = 3.0
    n_levels: int = 4  # Laplacian band levels (finest level is never amplified)
    luminance_only: bool = True  # amplify Y only; chroma passes through
    exaggeration: float = 1.0  # multiplies the lambda_c rule (1 = the paper's bound)


@dataclass(frozen=True)
class WindowConfig:
    """How magnified frames become the temporal head's input."""

    length: int = 16  # T: encoded frames per window
    fps: float = 15.0  # rate at which frames enter the encoder; faster streams are subsampled
    # by timestamp before the encoder (decode and magnification still run on every frame)
    min_length: int = 8  # the shortest window a clip with no full one is scored with
    # (model/windows.py); fewer frames is "too few frames"


@dataclass(frozen=True)
class NetworkConfig:
    """The CNN-LSTM: rebuilds the torch network (model/network.py) on its own."""

    backbone: str = "light"  # "light" (MobileNetV3-small), "mobilenet_v2" (torchvision's
    # MobileNetV2, ImageNet weights loadable), "vgg16" (13 conv + 5 max-pool), or
    # "minifasnet_v2" / "minifasnet_v1se" (Silent-Face's anti-spoofing trunks, model/minifasnet.py)
    input_size: int = INPUT_SIZE  # side of the square input, px; the face crop is resized to it
    vgg_batchnorm: bool = False  # VGG-16 with BatchNorm after each conv
    reduce_channels: int = 32  # 1x1 conv on the last map, then flatten (keeps spatial layout)
    hidden: int = 128  # LSTM hidden size
    temporal: str = "lstm"  # "lstm" (CNN-LSTM) or "none" (frame-only CNN: mean of frame scores)
    attention: bool = True  # paper eq. 12-13; without it the LSTM states are averaged
    motion: str = "none"  # "flow": the LSTM also reads each encoded frame's motion
    # descriptor (model/motion.py: optical flow of the face against its margin, rigid and
    # not); "flow_stream": a second, small LSTM reads the descriptor alone and its logits
    # add to the appearance LSTM's; "delta": each frame's feature minus the previous
    # frame's; "none"
    dropout: float = 0.2
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)  # normalisation of [0, 1] input,
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)  # per channel in channel_order;
    # mean 0 and std 1/255 give [0, 255] (MINIFASNET_MEAN / MINIFASNET_STD)
    channel_order: str = "rgb"  # of the input channels: "rgb", or "bgr" (OpenCV's, as the
    # MiniFASNet weights were trained on); manifests written before the field are RGB


@dataclass(frozen=True)
class PreprocessConfig:
    """Everything between a decoded frame and the encoder input."""

    crop: CropConfig = field(default_factory=CropConfig)
    magnifier: MagnifierConfig = field(default_factory=MagnifierConfig)
    window: WindowConfig = field(default_factory=WindowConfig)

    def digest(self) -> str:
        """A short stable hash: the key of the preprocessing cache."""
        data = asdict(self)
        if data["crop"]["border"] == "replicate":  # the digests of caches from before the field
            del data["crop"]["border"]
        blob = json.dumps(data, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PreprocessConfig:
        return _from_dict(cls, data)


_nested_types: dict[tuple[str, str], type] = {
    ("PreprocessConfig", "crop"): CropConfig,
    ("PreprocessConfig", "magnifier"): MagnifierConfig,
    ("PreprocessConfig", "window"): WindowConfig,
}


def preprocess_for(preprocess: PreprocessConfig, network: NetworkConfig) -> PreprocessConfig:
    """``preprocess`` with its crop at the network's input size. Manifests and run configs
    written before the size was declared once also carry ``preprocess.crop.input_size``
    (always equal then): it is read and overwritten."""
    if preprocess.crop.input_size == network.input_size:
        return preprocess
    return replace(preprocess, crop=replace(preprocess.crop, input_size=network.input_size))


def preprocess_dict(preprocess: PreprocessConfig) -> dict[str, Any]:
    """``preprocess`` as a model or run writes it: without the crop's input size, which is
    the network's (preprocess_for)."""
    data = asdict(preprocess)
    del data["crop"]["input_size"]
    return data


def replace(obj: T, **changes: Any) -> T:
    return dataclasses.replace(obj, **changes)  # type: ignore[type-var]


def network_from_dict(data: dict[str, Any] | None) -> NetworkConfig:
    return _from_dict(NetworkConfig, data)


def crop_from_dict(data: dict[str, Any] | None) -> CropConfig:
    return _from_dict(CropConfig, data)


def magnifier_from_dict(data: dict[str, Any] | None) -> MagnifierConfig:
    return _from_dict(MagnifierConfig, data)


def window_from_dict(data: dict[str, Any] | None) -> WindowConfig:
    return _from_dict(WindowConfig, data)
