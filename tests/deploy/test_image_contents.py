"""The CPU image's Python code, rebuilt without Docker: the files the Dockerfile copies, as
.dockerignore lets them through, built into a wheel (what `make install-serve EDITABLE=`
installs), then `liveness serve` run from that wheel alone with torch and the training code
out of reach, and probed by the Dockerfile's and docker-compose.yml's own health checks."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from tests.deploy.dockerfile import copy_sources, dockerignore_excludes, parse_dockerfile
from tests.deploy.support import REPO_ROOT, Replica, wait_ready
from tests.helpers import write_clip
from tests.service.support import free_port

pytestmark = pytest.mark.server  # starts its own server processes

_, STAGES = parse_dockerfile((REPO_ROOT / "Dockerfile").read_text())
STAGE = {s.name: s for s in STAGES}

# Run with `python -S`: no .pth file is read (the working copy's editable install is one), and
# the import path is the wheel plus only the distributions `pip install ".[serve]"` brings.
BOOTSTRAP = """
import sys
import liveness, model, service
assert liveness.__file__.startswith(sys.argv[1]), liveness.__file__
assert model.__file__.startswith(sys.argv[1]), model.__file__
assert service.__file__.startswith(sys.argv[1]), service.__file__
from liveness.cli import main
sys.exit(main(sys.argv[2:]))
"""


def serve_requirements() -> list[str]:
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"] + project["optional-dependencies"]["serve"]


def dependency_closure(requirements: list[str]) -> set[str]:
    """The installed distributions these requirements pull in, extras and markers followed."""
    from importlib.metadata import distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found: set[str] = set()
    todo = [(Requirement(r), {""}) for r in requirements]
    while todo:
        req, extras = todo.pop()
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in extras):
            continue
        key = canonicalize_name(req.name) + "".join(f"[{e}]" for e in sorted(req.extras))
        if key in found:
            continue
        found.add(key)
        todo += [(Requirement(r), {"", *req.extras}) for r in distribution(req.name).requires or []]
    return {k.split("[")[0] for k in found}


def serve_site_packages(dest: Path) -> Path:
    """A folder with links to the files of exactly those distributions (torch and the
    training packages are absent unless the serving requirements pull them in)."""
    from importlib.metadata import distribution

    purelib = Path(sysconfig.get_paths()["purelib"]).resolve()
    dest.mkdir(parents=True)
    for name in dependency_closure(serve_requirements()):
        for file in distribution(name).files or []:
            parts = Path(file).parts
            target = purelib / parts[0]
            if ".." in parts or not target.exists() or (dest / parts[0]).exists():
                continue
            (dest / parts[0]).symlink_to(target)
    return dest


def build_context(dest: Path) -> Path:
    """The build stage's COPY sources, less what .dockerignore leaves out."""
    ignore = (REPO_ROOT / ".dockerignore").read_text()
    for instruction in STAGE["build"].all("COPY"):
        for source in copy_sources(instruction):
            path = REPO_ROOT / source
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            for file in files:
                rel = file.relative_to(REPO_ROOT).as_posix()
                if not dockerignore_excludes(ignore, rel):
                    (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(file, dest / rel)
    return dest


DETECTOR_WEIGHTS = "model/weights/blazeface/face_detection_short_range.tflite"


def fetch_weights_as_the_image_does(context: Path) -> None:
    """The Makefile's weights step, run in the build context as `make install-serve` runs it
    in the image (.dockerignore keeps the host's copy out): pip download of the pinned
    mediapipe wheel, both checksums, the file in place before the wheel is built."""
    venv = Path(sys.executable).parents[1]
    cmd = ["make", "-C", str(context), DETECTOR_WEIGHTS, f"VENV={venv}"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "sha256 ok" in run.stdout, run.stdout


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The wheel `pip install .` builds from the image's context, unpacked."""
    tmp = tmp_path_factory.mktemp("image")
    context = build_context(tmp / "context")
    assert not (context / DETECTOR_WEIGHTS).exists()  # never copied from the host
    fetch_weights_as_the_image_does(context)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist")]
    if importlib.util.find_spec("setuptools") is not None:
        cmd.append("--no-build-isolation")  # offline; else pip fetches the build backend
    run = subprocess.run([*cmd, str(context)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    (wheel,) = (tmp / "dist").glob("liveness-*.whl")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(tmp / "site")
    return tmp / "site"


@pytest.fixture(scope="module")
def third_party(tmp_path_factory) -> Path:
    return serve_site_packages(tmp_path_factory.mktemp("serve_env") / "site-packages")


def test_the_wheel_holds_the_serving_packages_and_the_embedded_model(site):
    top = {p.name for p in site.iterdir()}
    assert {"liveness", "model", "service"} <= top
    assert not top & {"training", "bench", "tests", "deploy"}
    (info,) = site.glob("liveness-*.dist-info")
    assert "liveness = liveness.cli:main" in (info / "entry_points.txt").read_text()
    for package in ("liveness", "model", "service"):  # every module of the working copy is there
        wanted = {p.relative_to(REPO_ROOT) for p in (REPO_ROOT / package).rglob("*.py")}
        assert wanted <= {p.relative_to(site) for p in (site / package).rglob("*.py")}
    # package data: the embedded default model and the demo page's files, where present
    import tomllib

    data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package, patterns in data["package-data"].items():
        for pattern in patterns:
            for file in (REPO_ROOT / package).glob(pattern):
                if file.is_file() and "__pycache__" not in file.parts:
                    baked = site / file.relative_to(REPO_ROOT)
                    assert baked.read_bytes() == file.read_bytes(), f"{file} not in the wheel"


def test_the_wheel_carries_the_face_detectors_checked_weights(site):
    from model.detectors import BLAZEFACE_SHA256

    baked = site / DETECTOR_WEIGHTS
    assert baked.is_file(), "the image's wheel has no face detector weights"
    assert hashlib.sha256(baked.read_bytes()).hexdigest() == BLAZEFACE_SHA256
    # the build stages copy the step the Makefile runs before the install
    copied = {src for i in STAGE["build"].all("COPY") for src in copy_sources(i)}
    assert "scripts/fetch_detector_weights.py" in copied


def run_from_wheel(
    site: Path, third_party: Path, args: list[str], env: dict[str, str], **kw
) -> subprocess.Popen:
    env = {**env, "PYTHONPATH": os.pathsep.join([str(site), str(third_party)])}
    cmd = [sys.executable, "-S", "-c", BOOTSTRAP, str(site), *args]
    return subprocess.Popen(cmd, env=env, **kw)


def probe(command: list[str], env: dict[str, str]) -> int:
    return subprocess.run(command, env=env, capture_output=True, timeout=30).returncode


def test_the_serving_environment_has_no_torch_and_no_training_packages(third_party):
    names = {p.name.split("-")[0].lower() for p in third_party.iterdir()}
    assert {"onnxruntime", "cv2", "fastapi", "uvicorn", "numpy"} <= names
    assert not names & {"torch", "onnx", "sklearn", "skimage", "matplotlib", "pytest"}


def test_the_cli_offers_serving_commands_only(site, third_party, tmp_path):
    proc = run_from_wheel(
        site,
        third_party,
        ["--help"],
        dict(os.environ),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    for command in ("serve", "check", "stream"):
        assert f"    {command} " in out
    for command in ("train", "export", "eval", "synth", "bench"):
        assert f"    {command} " not in out


def test_liveness_serve_runs_from_the_wheel_and_passes_both_health_checks(
    site, third_party, tiny_model_dir, tmp_path
):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVENESS_")}
    env.update(STAGE["runtime"].env())  # the image's own settings ...
    env.pop("PATH")
    env.update(  # ... on loopback, with the test model
        {"PATH": os.environ["PATH"], "LIVENESS_HOST": "127.0.0.1", "LIVENESS_PORT": str(port)},
        LIVENESS_MODEL_DIR=str(tiny_model_dir),
        LIVENESS_PROVIDERS="cpu",
        LIVENESS_THREADS="1",
    )
    docker_probe = [sys.executable, *STAGE["runtime"].one("HEALTHCHECK").exec_form()[1:]]
    compose_test = _compose_probe().replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    compose_probe = [sys.executable, "-c", compose_test]
    assert probe(docker_probe, env) != 0 and probe(compose_probe, env) != 0  # nothing there
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = run_from_wheel(
            site, third_party, ["serve"], env, cwd=tmp_path, stdout=out, stderr=out
        )
    replica = Replica(port, tiny_model_dir, log, proc)
    try:
        wait_ready(replica)
        assert probe(docker_probe, env) == 0
        assert probe(compose_probe, env) == 0
        clip = write_clip(tmp_path / "noise.mp4", noise_frames(), 10.0)
        r = httpx.post(
            replica.url + "/v1/liveness",
            content=clip.read_bytes(),
            headers={"content-type": "video/mp4"},
            timeout=60,
        )
        assert r.status_code == 422 and r.json()["error"]["code"] == "no_face", r.text
    finally:
        replica.stop()
    # a graceful stop on SIGTERM (uvicorn re-raises the signal once it has shut down)
    assert proc.returncode in (0, -signal.SIGTERM), log.read_text()[-3000:]
    assert "Application shutdown complete" in log.read_text()


def _compose_probe() -> str:
    import yaml

    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    test = compose["services"]["api"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"] and test[3].count("127.0.0.1:8000") == 1
    return test[3]


def noise_frames() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 255, (120, 160, 3), np.uint8), (9, 9), 3)
    return [np.roll(base, 3 * i, axis=1) for i in range(12)]
