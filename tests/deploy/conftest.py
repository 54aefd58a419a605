"""The service image, built once for the session by tests/deploy/engine.py (podman)."""

from __future__ import annotations

import pytest

from tests.deploy import engine


@pytest.fixture(scope="session")
def built_image(tmp_path_factory) -> engine.Built:
    reason = engine.unavailable()
    if reason:
        pytest.skip(reason)
    log = tmp_path_factory.mktemp("image") / "build.log"
    built = engine.build_image(log)
    print(f"\nimage: base {built.base_seconds:.0f} s, build {built.build_seconds:.0f} s")
    return built
