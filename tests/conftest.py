"""Fixtures shared across the suite.

torch eager with several OpenMP threads stalls badly when another process holds a core
(2-core machines), so the suite runs torch single-threaded; subprocesses inherit it.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from training.shared_data import REAL_CLIPS  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


def real_clips() -> list[Path]:
    """The genuine face clips beside the repository, or an empty list."""
    if not REAL_CLIPS.is_dir():
        return []
    return sorted(REAL_CLIPS.glob("*.mp4"))


@pytest.fixture(scope="session")
def real_clip_paths() -> list[Path]:
    clips = real_clips()
    if not clips:
        pytest.skip(f"real face clips not available: {REAL_CLIPS} is absent")
    return clips


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small untrained light model (64 px input, T=8) exported to ONNX by the tests."""
    from tests.helpers import export_tiny_model

    return export_tiny_model(tmp_path_factory.mktemp("tiny_model"))
