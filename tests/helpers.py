"""Builders the tests share: a tiny exported model and short real video files."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import numpy as np

from model.config import (
    CropConfig,
    MagnifierConfig,
    NetworkConfig,
    PreprocessConfig,
    WindowConfig,
)
from model.video import write_clip  # noqa: F401 (the tests write clips through it)

TINY_SIZE = 64


def tiny_configs(
    window: int = 8, min_length: int = 4, fps: float = 15.0
) -> tuple[NetworkConfig, PreprocessConfig]:
    network = NetworkConfig(backbone="light", input_size=TINY_SIZE, reduce_channels=8, hidden=16)
    preprocess = PreprocessConfig(
        crop=CropConfig(input_size=TINY_SIZE),
        magnifier=MagnifierConfig(n_levels=3),
        window=WindowConfig(length=window, fps=fps, min_length=min_length),
    )
    return network, preprocess


def export_tiny_model(out_dir: Path, seed: int = 0, threshold: float = 0.5, **window) -> Path:
    """Export an untrained light network (deterministic weights) with its manifest."""
    import torch

    from model.export import export_model, make_manifest
    from model.network import build_network

    network, preprocess = tiny_configs(**window)
    torch.manual_seed(seed)
    net = build_network(network).eval()
    manifest = make_manifest(net, preprocess, name="tiny-test", threshold=threshold)
    export_model(net, manifest, out_dir)
    return Path(out_dir)


def real_frames(path: Path, n: int, max_side: int = 320) -> tuple[list[np.ndarray], float]:
    """The first n frames of a real clip, downscaled, and its frame rate."""
    from model.video import read_frames

    frames, _, info = read_frames(path, max_frames=n, max_side=max_side)
    return frames, info.fps


def wait_until_ready(
    proc: subprocess.Popen, url: str, log_path: Path, timeout: float = 120, name: str = "server"
) -> None:
    """Poll ``url``/readyz until it answers 200; fail with the server's log if the process
    exits or ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            log = log_path.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"the {name} exited ({proc.returncode}): {log}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            log = log_path.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"the {name} was not ready in {timeout:g} s: {log}")
        time.sleep(0.1)
