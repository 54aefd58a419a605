"""docker-compose.yml brought up for real, with podman-compose (the `dev` extra) on podman:
the single `api` service, and the `scale` profile (nginx in front of two replicas) with
nginx built from Debian's package (deploy/nginx/Dockerfile.debian), as no registry can be
reached for the official image.

Two differences from `docker compose up` on Docker, both forced by Debian bookworm's
packages and set in an override file, nothing else changed: nginx 1.22 has no `resolve` on
upstream servers, so the replicas are named without it (`server replica:8000;`, looked up
once when nginx starts, after both replicas); and podman 4.3 cannot wait for a dependency's
health (podman-compose starts nginx once the replicas have started), so the test waits for
the replicas' own health check before it sends anything through nginx.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import yaml

from model.manifest import DEFAULT_MODEL_DIR, read_manifest
from tests.deploy import engine
from tests.deploy.support import REPLICA_ENV, REPO_ROOT
from tests.deploy.test_nginx_scaleout import jpeg
from tests.helpers import real_frames, write_clip
from tests.service.support import free_port

pytestmark = [pytest.mark.slow, pytest.mark.server]

PROJECT = "liveness-test"
NGINX_IMAGE = "localhost/liveness-nginx:test"
FRAMES = 24


@pytest.fixture(scope="module")
def compose_cmd(request) -> list[str]:
    if importlib.util.find_spec("podman_compose") is None:
        pytest.skip("podman-compose is not installed (the `dev` extra has it: make install-dev)")
    request.getfixturevalue("built_image")  # the image compose runs (liveness:test)
    return [sys.executable, "-m", "podman_compose", "-p", PROJECT]


@pytest.fixture(scope="module")
def face_clip(real_clip_paths, tmp_path_factory) -> tuple[bytes, list, float]:
    path = next(p for p in real_clip_paths if "d11" in p.name)
    frames, fps = real_frames(path, FRAMES, max_side=256)
    mp4 = write_clip(tmp_path_factory.mktemp("compose") / "face.mp4", frames, fps)
    return mp4.read_bytes(), frames, fps


class Compose:
    def __init__(self, cmd: list[str], folder: Path, files: list[Path], port: int) -> None:
        self.cmd, self.files, self.port = cmd, files, port
        (folder / "models").mkdir(exist_ok=True)
        self.env = {
            **engine.engine_env(),
            "IMAGE_TAG": engine.IMAGE.rsplit(":", 1)[1],  # liveness:test, the built image
            "PUBLISHED_PORT": str(port),
            "MODELS_DIR": str(folder / "models"),
        }
        self.url = f"http://127.0.0.1:{port}"

    def __call__(self, *args: str, timeout: float = 300) -> str:
        files = [a for f in self.files for a in ("-f", str(f))]
        run = subprocess.run(
            [*self.cmd, *files, *args],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert run.returncode == 0, f"podman-compose {' '.join(args)}: {run.stdout}{run.stderr}"
        return run.stdout

    def down(self) -> None:
        """Compose's `down`, then whatever of the project is left (scaled replicas that a
        `down` without --scale does not name)."""
        subprocess.run(
            [*self.cmd, *[a for f in self.files for a in ("-f", str(f))], "--profile", "scale"]
            + ["down", "-t", "30"],
            cwd=REPO_ROOT, env=self.env, capture_output=True, timeout=120,
        )  # fmt: skip
        label = f"label=io.podman.compose.project={PROJECT}"
        ids = engine.podman("ps", "-aq", "--filter", label).stdout.split()
        if ids:
            engine.podman("rm", "-f", "-t", "0", *ids, check=False)
        engine.podman("pod", "rm", "-f", f"pod_{PROJECT}", check=False)
        engine.podman("network", "rm", f"{PROJECT}_default", check=False)


def wait_ready(url: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            r = httpx.get(url + "/readyz", timeout=2)
            if r.status_code == 200:
                return r.json()
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} not ready in {timeout:g} s"
        time.sleep(0.25)


def wait_healthy(container: str, timeout: float = 120) -> None:
    """The compose health check (/readyz) run the way the engine's timer runs it."""
    deadline = time.monotonic() + timeout
    while engine.podman("healthcheck", "run", container, check=False).returncode != 0:
        assert time.monotonic() < deadline, f"{container} not healthy in {timeout:g} s"
        time.sleep(1)


def upload(url: str, clip: bytes) -> dict:
    r = httpx.post(url + "/v1/liveness", files={"file": ("face.mp4", clip)}, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def test_compose_up_serves_the_api(compose_cmd, face_clip, tmp_path):
    compose = Compose(compose_cmd, tmp_path, [REPO_ROOT / "docker-compose.yml"], free_port())
    compose.down()
    try:
        compose("up", "-d", "--no-build", "api")
        ready = wait_ready(compose.url)
        assert ready["model"]["hash"] == read_manifest(DEFAULT_MODEL_DIR).model_hash
        assert upload(compose.url, face_clip[0])["frames_decoded"] == FRAMES
        # compose's own settings reached the container
        info = engine.inspect(f"{PROJECT}_api_1")
        assert info["HostConfig"]["ReadonlyRootfs"] is True
        wait_healthy(f"{PROJECT}_api_1")
    finally:
        compose.down()


def nginx_upstreams(pattern: str) -> list[str]:
    """The replicas named in nginx's access log (the container's output) for ``pattern``."""
    log = engine.podman("logs", f"{PROJECT}_nginx_1").stdout
    lines = [line for line in log.splitlines() if re.search(pattern, line)]
    return [re.search(r"upstream=(\S+)", line)[1] for line in lines]


def test_the_scale_profile_balances_uploads_and_streams_over_two_replicas(
    compose_cmd, face_clip, tmp_path
):
    from websockets.sync.client import connect

    engine.build(
        NGINX_IMAGE, tmp_path / "nginx-build.log",
        "--build-arg", f"DEBIAN_IMAGE={engine.DEBIAN_IMAGE}",
        "-f", str(REPO_ROOT / "deploy/nginx/Dockerfile.debian"), str(REPO_ROOT / "deploy/nginx"),
    )  # fmt: skip
    override = tmp_path / "override.yml"
    override.write_text(
        yaml.safe_dump(
            {
                "services": {
                    "replica": {"environment": REPLICA_ENV},
                    "nginx": {
                        "image": NGINX_IMAGE,
                        "environment": {"NGINX_UPSTREAM_SERVERS": "server replica:8000;"},
                    },
                }
            }
        )
    )
    files = [REPO_ROOT / "docker-compose.yml", override]
    compose = Compose(compose_cmd, tmp_path, files, free_port())
    compose.down()
    clip, frames, fps = face_clip
    try:
        compose("--profile", "scale", "up", "-d", "--no-build", "--scale", "replica=2", "nginx")
        for i in (1, 2):
            wait_healthy(f"{PROJECT}_replica_{i}")
        assert wait_ready(compose.url)["status"] == "ready"
        assert httpx.get(compose.url + "/metrics", timeout=10).status_code == 403

        bodies = [upload(compose.url, clip) for _ in range(4)]
        assert max(b["score"] for b in bodies) - min(b["score"] for b in bodies) < 1e-6
        served = Counter(nginx_upstreams(r'"POST /v1/liveness'))
        assert sorted(served.values()) == [2, 2], served

        # two streams open together: least_conn puts them on different replicas
        ws_url = compose.url.replace("http://", "ws://") + "/v1/stream"
        with ExitStack() as stack:
            conns = [stack.enter_context(connect(ws_url, open_timeout=10)) for _ in range(2)]
            for conn in conns:
                conn.send(json.dumps({"type": "start", "fps": fps}))
                assert json.loads(conn.recv(timeout=30))["type"] == "ready"
            for frame in frames:
                for conn in conns:
                    conn.send(jpeg(frame))
                    assert json.loads(conn.recv(timeout=30))["type"] == "frame"
            for conn in conns:
                conn.send(json.dumps({"type": "end"}))
                result = json.loads(conn.recv(timeout=30))
                assert result["type"] == "result" and result["frames_decoded"] == len(frames)
        deadline = time.monotonic() + 10
        while len(streams := nginx_upstreams(r'"GET /v1/stream[^"]*" 101')) < 2:
            assert time.monotonic() < deadline, "nginx logged no stream"
            time.sleep(0.1)
        assert len(set(streams)) == 2 and set(streams) == set(served), (streams, served)
    finally:
        compose.down()
