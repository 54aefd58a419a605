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


# Fixtures that start `liveness serve` as a process: a test using one is a server test.
SERVER_FIXTURES = {"server", "server_url", "secured_server"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark server tests by what they use (make test-fast leaves them out): a server
    fixture, or the uvicorn transport of the parametrised service API. Modules whose own
    fixtures start processes carry the mark themselves."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if (
            SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))
            or params.get("api") == "uvicorn"
        ):
            item.add_marker(pytest.mark.server)


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
