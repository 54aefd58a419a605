"""Service fixtures: a real uvicorn server process, the in-process app, real clips.

Most tests run against both transports (``api`` is parametrised): the in-process
``TestClient`` and ``liveness serve`` started as a subprocess on a free loopback port,
with the tiny test model and small limits passed as LIVENESS_* environment variables.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from bench.server import stop_process
from tests.helpers import real_frames, wait_until_ready, write_clip
from tests.service.support import CLIP_FRAMES, REPO_ROOT, Api, free_port, limits_env, make_app


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


@pytest.fixture(scope="session")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``liveness serve`` as a real process on a free loopback port, ready when yielded."""
    port = free_port()
    env = {**os.environ, **limits_env(tiny_model_dir), "PYTHONPATH": str(REPO_ROOT)}
    cmd = [sys.executable, "-m", "liveness", "serve", "--port", str(port)]
    cmd += ["--providers", "cpu", "--threads", "1", "--log-level", "warning"]
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    # its output goes to a file, not a pipe: a full pipe nobody reads would block it
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(proc, url, log_path)
        yield Server(url, proc.pid)
    finally:
        stop_process(proc, timeout=20)


@pytest.fixture(scope="session")
def server_url(server: Server) -> str:
    return server.url


@pytest.fixture(scope="session")
def inprocess_client(tiny_model_dir: Path):
    from fastapi.testclient import TestClient

    with TestClient(make_app(tiny_model_dir)) as client:
        yield client


@pytest.fixture(params=["inprocess", "uvicorn"])
def api(request) -> Iterator[Api]:
    if request.param == "inprocess":
        client = request.getfixturevalue("inprocess_client")
        yield Api("inprocess", client, "", client)
        return
    url = request.getfixturevalue("server_url")
    with httpx.Client(base_url=url, timeout=120) as client:
        yield Api("uvicorn", client, url)


# -- clips -----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def genuine_clip(real_clip_paths) -> tuple[list[np.ndarray], float]:
    """The first frames of a real face clip (a child talking), 256 px, and its fps."""
    path = next(p for p in real_clip_paths if "d11" in p.name)
    return real_frames(path, CLIP_FRAMES, max_side=256)


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("service_clips")


@pytest.fixture(scope="session")
def genuine_mp4(genuine_clip, clip_dir) -> Path:
    frames, fps = genuine_clip
    return write_clip(clip_dir / "genuine.mp4", frames, fps)


@pytest.fixture(scope="session")
def attack_mp4(genuine_clip, clip_dir) -> Path:
    """A synthesised print attack: a still of the same face on a hand-held sheet."""
    from training.synth.dataset import render_attack

    frames, fps = genuine_clip
    attack, _ = render_attack("print", np.stack(frames), fps, np.random.default_rng(3))
    return write_clip(clip_dir / "print_attack.mp4", list(attack), fps)


@pytest.fixture(scope="session")
def no_face_mp4(clip_dir) -> Path:
    rng = np.random.default_rng(0)
    frames = [cv2.GaussianBlur(rng.integers(0, 255, (120, 160, 3), np.uint8), (9, 9), 3)]
    frames = [np.roll(frames[0], 2 * i, axis=1) for i in range(20)]
    return write_clip(clip_dir / "no_face.mp4", frames, 10.0)
