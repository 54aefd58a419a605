"""A second frame-encoder engine: the exported encoder's weights run through PyTorch.

ONNX Runtime is the default engine. On a CUDA GPU, PyTorch with channels-last memory,
half precision and (optionally) ``torch.compile`` is several times faster, so
``TorchEncoder`` rebuilds the encoder from ``encoder.onnx`` (``encoder_from_onnx``: the
same weights, bit for bit) and offers the same call as ``LivenessModel.encode``::

    encoder = TorchEncoder("path/to/model_dir", device="cuda", dtype="bf16")
    features = encoder.encode(frames)  # float32 [N, 3, S, S] -> float32 [N, F]

Precision: "fp32" matches ONNX Runtime to ~1e-6 (TF32 is off unless ``tf32=True``:
it rounds conv inputs to 10 mantissa bits); "bf16"/"fp16" convert the weights and
run the convs in half precision, features come back as float32.
BatchNorm is folded into the preceding conv at load (inference only), as ONNX Runtime
does. torch is not part of the serving install: it is imported here lazily, and a
clear ``TorchUnavailableError`` says what to install when it is missing.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from model.manifest import ENCODER_NAME, Manifest, read_manifest

if TYPE_CHECKING:
    import torch

DEVICES = ("cuda", "cpu")
DTYPES = ("fp32", "bf16", "fp16")
COMPILE_MODE = "max-autotune-no-cudagraphs"  # autotuned kernels; no graphs (batch sizes vary)


class TorchUnavailableError(RuntimeError):
    """PyTorch is not installed (or not the build the requested device needs)."""


class TorchEncoderError(ValueError):
    """A bad option or input for the torch encoder engine."""


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise TorchUnavailableError(
            "the torch encoder engine needs PyTorch, which is not installed: install the "
            "'train' extra (pip install 'liveness[train]', or a CUDA build of torch) or use "
            "the ONNX Runtime engine"
        ) from exc
    return torch


def fold_batchnorm(module: Any) -> Any:
    """Fold every eval-mode BatchNorm2d that directly follows a Conv2d in a Sequential
    into that conv (the BatchNorm becomes Identity). In place; returns ``module``."""
    torch = _import_torch()
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:], strict=False):
            conv, bn = seq._modules[a], seq._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                with torch.no_grad():
                    seq._modules[a] = fuse_conv_bn_eval(conv.eval(), bn.eval())
                seq._modules[b] = nn.Identity()
    return module


class TorchEncoder:
    """An exported encoder run by PyTorch: ``encode(frames [N,3,S,S]) -> features [N,F]``.

    ``model``: a model directory, or its ``Manifest`` with ``encoder_path`` (the
    encoder.onnx to take the weights from). ``compile``: wrap the encoder in
    ``torch.compile(mode=compile_mode, backend=compile_backend)``; batches are then padded up to a power of two
    so each size compiles once (a few minutes of autotuning per size on a GPU; call
    ``warmup`` with the batch sizes you will use before serving).
    """

    def __init__(
        self,
        model: str | Path | Manifest,
        encoder_path: str | Path | None = None,
        *,
        device: str = "cuda",
        dtype: str = "fp32",
        compile: bool = False,
        channels_last: bool = True,
        tf32: bool = False,
        compile_mode: str = COMPILE_MODE,
        compile_backend: str = "inductor",
        threads: int | None = None,
    ) -> None:
        torch = _import_torch()
        from model.export import encoder_from_onnx

        manifest, path = _resolve(model, encoder_path)
        if device not in DEVICES:
            raise TorchEncoderError(f"device must be one of {DEVICES}, got {device!r}")
        if dtype not in DTYPES:
            raise TorchEncoderError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        if device == "cuda" and not torch.cuda.is_available():
            raise TorchUnavailableError(
                f"device='cuda' but this torch {torch.__version__} sees no CUDA GPU "
                "(a CPU-only build, or no driver); use device='cpu' or the ONNX Runtime engine"
            )
        if threads is not None and device == "cpu":
            torch.set_num_threads(int(threads))
        if device == "cuda":
            # Process-wide switches: TF32 makes fp32 convs/matmuls faster and less exact.
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
            torch.backends.cudnn.benchmark = True  # pick the fastest conv kernel per shape
        self.manifest = manifest
        self.device = torch.device(device)
        self.dtype_name = dtype
        self.dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
        self.channels_last = channels_last
        self.input_size = manifest.network.input_size
        self.feature_dim = manifest.feature_dim  # the head's input width
        self.encoder_dim = manifest.encoder_dim  # what encode() returns per frame
        self.compiled = bool(compile)
        net = fold_batchnorm(encoder_from_onnx(path, manifest)).eval()
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        net = net.to(device=self.device, dtype=self.dtype, memory_format=memory_format)
        if compile:  # `mode` is an inductor option; other backends (e.g. "aot_eager") take none
            mode = compile_mode if compile_backend == "inductor" else None
            net = torch.compile(net, mode=mode, backend=compile_backend)
        self._net = net
        self._torch = torch
        self._pinned: torch.Tensor | None = None  # page-locked staging buffer (CUDA only)
        self._lock = threading.Lock()  # one encode at a time: the staging buffer is shared

    def _check(self, frames: np.ndarray) -> None:
        s = self.input_size
        if not isinstance(frames, np.ndarray):
            raise TorchEncoderError(f"frames must be a numpy array, got {type(frames).__name__}")
        if frames.ndim != 4 or frames.shape[1:] != (3, s, s) or len(frames) == 0:
            raise TorchEncoderError(f"expected frames [N>0, 3, {s}, {s}], got shape {frames.shape}")
        if frames.dtype != np.float32:
            raise TorchEncoderError(
                f"expected float32 frames (to_network_input), got dtype {frames.dtype}"
            )

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """float32 [N, 3, S, S] normalised RGB -> float32 [N, F] features."""
        self._check(frames)
        torch = self._torch
        n = len(frames)
        x = torch.from_numpy(np.ascontiguousarray(frames))
        if self.compiled and n & (n - 1):  # pad to the next power of two: one graph per size
            x = torch.cat([x, x.new_zeros((2 ** n.bit_length() - n, *x.shape[1:]))])
        with self._lock, torch.inference_mode():
            x = self._to_device(x).to(self.dtype)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            features = self._net(x)[:n]
            return features.float().cpu().numpy()

    def encode_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Device-resident frames [N, 3, S, S] (this encoder's device and dtype) -> features
        [N, F] on the device, in that dtype: no host copies (for callers that keep data on
        the GPU, and for measuring the encoder alone)."""
        with self._torch.inference_mode():
            if self.channels_last:
                x = x.contiguous(memory_format=self._torch.channels_last)
            return self._net(x)

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        """Host -> device; on CUDA through a reused page-locked buffer (one memcpy, async DMA).

        Safe to reuse: ``encode`` holds the lock and ends with a synchronising copy back.
        """
        if self.device.type != "cuda":
            return x
        if self._pinned is None or len(self._pinned) < len(x):
            self._pinned = self._torch.empty(x.shape, dtype=x.dtype).pin_memory()
        staged = self._pinned[: len(x)]
        staged.copy_(x)
        return staged.to(self.device, non_blocking=True)

    def warmup(self, batch_sizes: tuple[int, ...] = (1,)) -> None:
        """Run each batch size once (compiles and autotunes when ``compile`` is on)."""
        s = self.input_size
        for n in batch_sizes:
            self.encode(np.zeros((n, 3, s, s), np.float32))

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            self._torch.cuda.synchronize()

    def describe(self) -> dict[str, str]:
        return {
            "engine": "torch",
            "device": self.device.type,
            "dtype": self.dtype_name,
            "channels_last": str(self.channels_last),
            "compiled": str(self.compiled),
        }


def _resolve(
    model: str | Path | Manifest, encoder_path: str | Path | None
) -> tuple[Manifest, Path]:
    if isinstance(model, Manifest):
        if encoder_path is None:
            raise TorchEncoderError("a Manifest needs encoder_path: the encoder.onnx to load")
        path = Path(encoder_path)
        manifest = model
    else:
        if encoder_path is not None:
            raise TorchEncoderError(
                "encoder_path is only for a Manifest; a model directory has its own"
            )
        manifest = read_manifest(Path(model))
        path = Path(model) / ENCODER_NAME
    if not path.is_file():
        raise TorchEncoderError(f"encoder weights not found: {path}")
    return manifest, path
