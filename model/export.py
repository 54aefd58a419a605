"""Export a LivenessNet to a model directory: encoder.onnx, head.onnx, manifest.json.

    encoder.onnx  frames [N, 3, S, S] float32 normalised RGB -> features [N, F]
    head.onnx     features [B, T, F] -> prob_genuine [B], attention [B, T]

Both use the TorchScript-based exporter (``dynamo=False``): the torch.export-based one
specialises ``nn.LSTM`` to the example window length, while this one keeps B, T and N
dynamic. The encoder is exported with its BatchNorm layers unfused (onnxruntime fuses
them itself when it loads the graph), so every encoder initializer keeps its
``state_dict`` name and :func:`encoder_state_dict_from_onnx` can hand the exact weights
back to PyTorch.
"""

from __future__ import annotations

import dataclasses
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from model.config import PreprocessConfig
from model.labels import GENUINE_CLASS
from model.manifest import ENCODER_NAME, HEAD_NAME, Manifest, ManifestError, write_manifest
from model.network import FrameEncoder, LivenessNet

DEFAULT_OPSET = 17
_EXAMPLE_FRAMES = 2  # N of the example batch the encoder is traced with (N stays dynamic)
_EXAMPLE_WINDOWS = 2  # B of the example head input (B and T stay dynamic)


class ExportError(RuntimeError):
    """The network and the manifest disagree, or an ONNX file cannot be read back."""


class _HeadGraph(nn.Module):
    """features [B, T, F] -> (prob_genuine [B], attention [B, T]): what serving needs."""

    def __init__(self, net: LivenessNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net.forward_features(features)
        return torch.softmax(out.logits, dim=-1)[:, GENUINE_CLASS], out.attention


def make_manifest(
    net: LivenessNet,
    preprocess: PreprocessConfig,
    name: str,
    threshold: float = 0.5,
    **extra: Any,
) -> Manifest:
    """A Manifest describing ``net``; ``extra`` sets other Manifest fields (metrics, ...)."""
    allowed = {f.name for f in dataclasses.fields(Manifest)} - {
        "name", "network", "preprocess", "feature_dim", "threshold", "files",
    }  # fmt: skip
    unknown = sorted(set(extra) - allowed)
    if unknown:
        raise ManifestError(f"unknown manifest fields {unknown}; allowed: {sorted(allowed)}")
    extra.setdefault("created", datetime.now(UTC).isoformat(timespec="seconds"))
    manifest = Manifest(
        name=name,
        network=net.config,
        preprocess=preprocess,
        feature_dim=net.feature_dim,
        threshold=threshold,
        **extra,
    )
    manifest.validate()
    return manifest


def export_model(
    net: LivenessNet, manifest: Manifest, out_dir: Path, opset: int = DEFAULT_OPSET
) -> Path:
    """Write encoder.onnx, head.onnx and manifest.json into ``out_dir``; return ``out_dir``.

    The net is exported in eval mode (dropout off, BatchNorm on running statistics) and
    put back in the mode it was in. The manifest must describe this net.
    """
    if manifest.network != net.config:
        raise ExportError(f"manifest network {manifest.network} != net config {net.config}")
    if manifest.feature_dim != net.feature_dim:
        raise ExportError(f"manifest feature_dim {manifest.feature_dim} != net {net.feature_dim}")
    manifest.validate()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The TorchScript exporter announces its deprecation on every call.
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            # It also warns that an LSTM traced at batch > 1 may not run at other batch
            # sizes; its zero initial state is built from the input's shape, so it does
            # (tests/model/test_export.py checks B = 1..3 against torch).
            warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size")
            # nn.LSTM's own input-size checks are evaluated once while tracing; harmless.
            warnings.filterwarnings(
                "ignore", category=torch.jit.TracerWarning, module="torch.nn.modules.rnn"
            )
            _export_encoder(net.encoder, out_dir / ENCODER_NAME, opset)
            window = max(2, manifest.preprocess.window.length)
            _export_head(net, out_dir / HEAD_NAME, window, opset)
    finally:
        net.train(was_training)
    write_manifest(out_dir, manifest)
    return out_dir


def _export_encoder(encoder: FrameEncoder, path: Path, opset: int) -> None:
    size = encoder.config.input_size
    example = torch.randn(_EXAMPLE_FRAMES, 3, size, size)
    torch.onnx.export(
        encoder,
        (example,),
        str(path),
        dynamo=False,
        opset_version=opset,
        input_names=["frames"],
        output_names=["features"],
        dynamic_axes={"frames": {0: "N"}, "features": {0: "N"}},
        # Constant folding would fold BatchNorm into the convs and rename their weights
        # to onnx::Conv_*; without it every initializer keeps its state_dict name.
        do_constant_folding=False,
    )


def _export_head(net: LivenessNet, path: Path, window: int, opset: int) -> None:
    example = torch.randn(_EXAMPLE_WINDOWS, window, net.feature_dim)
    torch.onnx.export(
        _HeadGraph(net),
        (example,),
        str(path),
        dynamo=False,
        opset_version=opset,
        input_names=["features"],
        output_names=["prob_genuine", "attention"],
        dynamic_axes={
            "features": {0: "B", 1: "T"},
            "prob_genuine": {0: "B"},
            "attention": {0: "B", 1: "T"},
        },
    )


def encoder_state_dict_from_onnx(path: Path) -> dict[str, torch.Tensor]:
    """The FrameEncoder ``state_dict`` stored in an exported ``encoder.onnx``.

    The exporter stores parameters under their state_dict names, except that tensors
    with identical values are stored once and the others become ``Identity`` nodes of
    that one (e.g. a fresh BatchNorm's running_var equals its weight): those are
    followed. BatchNorm ``num_batches_tracked`` counters are not part of an inference
    graph; they come back as 0 (they only matter for momentum-free BN training).
    """
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises several types for unreadable files
        raise ExportError(f"{path}: not a readable ONNX file ({exc})") from exc
    graph = model.graph
    tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in tensors:
            tensors[node.output[0]] = tensors[node.input[0]]
    state = {
        name: torch.from_numpy(np.array(value, copy=True))
        for name, value in tensors.items()
        if _is_state_key(name)
    }
    if not state:
        raise ExportError(f"{path}: no named encoder weights (was it exported by export_model?)")
    for key in [k for k in state if k.endswith(".running_mean")]:
        state[key.removesuffix("running_mean") + "num_batches_tracked"] = torch.tensor(0)
    return state


def _is_state_key(name: str) -> bool:
    """state_dict keys are dotted module paths; exporter-made names have '::' or '/'."""
    return name.startswith(("features.", "reduce.")) and "::" not in name and "/" not in name


def encoder_from_onnx(path: Path, manifest: Manifest) -> FrameEncoder:
    """A FrameEncoder (eval mode) with the exact weights of an exported encoder.onnx."""
    encoder = FrameEncoder(manifest.network)
    missing, unexpected = encoder.load_state_dict(encoder_state_dict_from_onnx(path), strict=False)
    if missing or unexpected:
        raise ExportError(
            f"{path} does not match the manifest's network: missing {missing}, "
            f"unexpected {unexpected}"
        )
    return encoder.eval()
