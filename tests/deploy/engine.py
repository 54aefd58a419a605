"""A real container engine for the image tests: podman (Debian's package, rootful), with the
repository's deploy/podman/containers.conf, the Python base made by deploy/base-image.sh from
Debian's packages (no registry is needed) and the Dockerfile's `runtime` target built on it.

Everything runs through ``podman`` commands, as a user would type them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.support import REPO_ROOT

CONTAINERS_CONF = REPO_ROOT / "deploy" / "podman" / "containers.conf"
BASE_SCRIPT = REPO_ROOT / "deploy" / "base-image.sh"
BASE_IMAGE = "localhost/python-base:bookworm"
DEBIAN_IMAGE = "localhost/debian:bookworm"  # imported by base-image.sh on its way
IMAGE = "localhost/liveness:test"
BUILD_STAGE_IMAGE = "localhost/liveness-build:test"
# The host's trust store goes into the base: whatever lets this host's pip reach PyPI (an
# inspecting proxy's CA included) lets the build's pip reach it too.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def engine_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    run = subprocess.run(
        ["podman", *args], env=engine_env(), capture_output=True, text=True, timeout=timeout
    )
    if check and run.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} failed ({run.returncode}): {run.stderr}")
    return run


def unavailable() -> str | None:
    """Why the container tests cannot run here, or None."""
    if shutil.which("podman") is None:
        return "podman is not installed (`make system-deps` installs Debian's podman as root)"
    if os.geteuid() != 0:
        return "the image tests need root (rootful podman; debootstrap for the Python base)"
    run = podman("info", "--format", "{{.Host.OCIRuntime.Name}}", timeout=60, check=False)
    if run.returncode != 0:
        return f"podman does not run here: {run.stderr.strip()[-500:]}"
    return None


@dataclass
class Built:
    image: str
    base_seconds: float
    build_seconds: float


def build_image(log: Path) -> Built:
    """The base (a no-op when its inputs are unchanged) and the `runtime` target (cached
    layers where the copied files are unchanged), with --format docker: the OCI format has
    no HEALTHCHECK."""
    start = time.monotonic()
    cmd = ["sh", str(BASE_SCRIPT), "--engine", "podman", "--tag", BASE_IMAGE]
    if HOST_CA_BUNDLE.is_file():
        cmd += ["--ca-bundle", str(HOST_CA_BUNDLE)]
    with log.open("a") as out:
        run = subprocess.run(
            cmd, env=engine_env(), stdout=out, stderr=subprocess.STDOUT, timeout=900
        )
    assert run.returncode == 0, f"deploy/base-image.sh failed: {log.read_text()[-4000:]}"
    base_done = time.monotonic()
    # The build stage is tagged too: its image holds the cached layers of `make install-serve`,
    # and a tag lets the one it replaces be removed, so that rebuilds do not pile up.
    for target, tag in (("build", BUILD_STAGE_IMAGE), ("runtime", IMAGE)):
        build(
            tag, log, "--format", "docker", "--build-arg", f"PYTHON_IMAGE={BASE_IMAGE}",
            "--target", target, str(REPO_ROOT),
        )  # fmt: skip
    return Built(IMAGE, base_done - start, time.monotonic() - base_done)


def build(tag: str, log: Path, *args: str) -> None:
    """``podman build --network host -t tag *args``; the image the tag named before, if
    another, is removed."""
    old = image_id(tag)
    cmd = ["podman", "build", "--network", "host", "-t", tag, *args]
    with log.open("a") as out:
        run = subprocess.run(
            cmd, env=engine_env(), stdout=out, stderr=subprocess.STDOUT, timeout=1800
        )
    assert run.returncode == 0, f"podman build {tag} failed: {log.read_text()[-4000:]}"
    if old and old != image_id(tag):
        podman("rmi", old, check=False)


def image_id(tag: str) -> str | None:
    run = podman("image", "inspect", "--format", "{{.Id}}", tag, check=False)
    return run.stdout.strip() if run.returncode == 0 else None


def inspect(name: str, kind: str = "container") -> dict:
    return json.loads(podman(kind, "inspect", name).stdout)[0]


@dataclass
class Container:
    name: str
    url: str

    def exec(self, *cmd: str, user: str | None = None, check: bool = True):
        args = ["exec", *(["--user", user] if user else []), self.name, *cmd]
        return podman(*args, timeout=60, check=check)

    def logs(self) -> str:
        run = podman("logs", self.name, check=False)
        return (run.stdout + run.stderr)[-4000:]

    def state(self) -> dict:
        return inspect(self.name)["State"]

    def remove(self) -> None:
        podman("rm", "-f", "-t", "0", self.name, check=False)


def run_container(name: str, port: int, env: dict[str, str], *options: str) -> Container:
    """``podman run -d`` of the image with its port published on 127.0.0.1:port."""
    podman("rm", "-f", "-t", "0", name, check=False)  # left over by an interrupted run
    env_args = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    podman("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8000", *env_args, *options, IMAGE)
    return Container(name, f"http://127.0.0.1:{port}")


def wait_ready(container: Container, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        if not container.state()["Running"]:
            raise RuntimeError(f"the container exited: {container.logs()}")
        try:
            if httpx.get(container.url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the container was not ready in {timeout:g} s: {container.logs()}")
        time.sleep(0.25)
