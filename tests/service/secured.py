"""A real ``liveness serve`` process with API keys, a signing key and small limits.

The security tests (auth, tokens, the bad-input battery, schemathesis) share one such
server per session. Its ``TMPDIR`` and working directory are empty folders of their own,
so a test can check that nothing was written there; its log (info level, the access
log included) goes to a file the tests read.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.server import stop_process
from tests.helpers import wait_until_ready
from tests.service.support import REPO_ROOT, free_port, limits_env

MiB = 1024 * 1024
KEYS = {
    "main": "main-key-7f3a9c2e41d8b6f0",
    "second": "second-key-5e1d0c9b8a7f6e5d",
    "revoked": "revoked-key-0a1b2c3d4e5f6a7b",
    "streams": "streams-key-9d8c7b6a5f4e3d2c",
}
SIGNING_KEY = "signing-key-for-tests-3c5e7a9b1d2f4a6c8e0b"
# Small limits, so every limit of the battery is cheap to reach.
SECURED = {
    "api_keys": ",".join(f"{n}:{k}" for n, k in KEYS.items()),
    "revoked_keys": "revoked",
    "signing_key": SIGNING_KEY,
    "key_requests_per_minute": 6000,
    "key_burst": 1000,
    "key_max_streams": 2,
    "max_stream_fps": 30,
    "stream_idle_seconds": 2,
    "stream_send_timeout_seconds": 2,
    "max_message_bytes": 4 * MiB,
    "log_level": "info",
    # connection limits: a short header timeout; failed credentials throttled per address,
    # loosely enough that the other tests' wrong keys from 127.0.0.1 never reach it
    "header_timeout_seconds": 2,
    "auth_max_failures": 100,
    "auth_failure_window_seconds": 300,
    # upload budgets: small enough that the battery reaches each one cheaply
    "max_video_pixels": 60_000_000,
    "upload_idle_seconds": 2,
    "upload_min_bytes_per_second": 100_000,
}


@dataclass(frozen=True)
class RunningServer:
    url: str
    pid: int
    log_path: Path
    tmpdir: Path  # the server's TMPDIR: must stay empty
    workdir: Path  # its working directory: must stay empty
    process: subprocess.Popen

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/v1/stream"

    def headers(self, name: str = "main") -> dict[str, str]:
        return {"X-API-Key": KEYS[name]}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def run_server(model_dir: Path, base: Path, **settings: object) -> Iterator[RunningServer]:
    """``liveness serve`` on a free loopback port with LIMITS and ``settings``; stopped
    (SIGTERM, then SIGKILL) on exit. ``base`` gets tmp/, work/ and server.log."""
    tmpdir, workdir = base / "tmp", base / "work"
    tmpdir.mkdir(parents=True)
    workdir.mkdir()
    log_path = base / "server.log"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVENESS_")}
    env.update(limits_env(model_dir))
    env.update({f"LIVENESS_{k.upper()}": str(v) for k, v in settings.items()})
    env.update({"PYTHONPATH": str(REPO_ROOT), "TMPDIR": str(tmpdir)})
    cmd = [sys.executable, "-m", "liveness", "serve", "--port", str(port)]
    cmd += ["--providers", "cpu", "--threads", "1"]
    with open(log_path, "w") as log:  # a file, not a pipe nobody reads
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(proc, url, log_path)
        yield RunningServer(url, proc.pid, log_path, tmpdir, workdir, proc)
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def secured_server(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    with run_server(tiny_model_dir, tmp_path_factory.mktemp("secured"), **SECURED) as server:
        yield server
