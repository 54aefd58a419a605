"""A real ``liveness serve`` process on loopback, for the benchmarks that need the server.

Settings go in as ``LIVENESS_*`` environment variables, exactly as a deployment sets
them. The server's CPU time counts as the benchmark's own (not foreign) load.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.gate import METER

START_TIMEOUT_S = 180.0


def stop_process(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGTERM (what `docker stop` sends: the server drains), SIGKILL after ``timeout``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BenchServer:
    """``with BenchServer(model_dir, log, batch_max_size=1) as server: ...``"""

    def __init__(self, model_dir: Path, log_path: Path, **settings: object) -> None:
        self.model_dir = Path(model_dir)
        self.log_path = Path(log_path)
        self.port = free_port()
        self.settings = settings
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/stream"

    def __enter__(self) -> BenchServer:
        env = dict(os.environ)
        env.update({f"LIVENESS_{k.upper()}": str(v) for k, v in self.settings.items()})
        cmd = [sys.executable, "-m", "liveness", "serve", "--model-dir", str(self.model_dir),
               "--port", str(self.port), "--log-level", "warning"]  # fmt: skip
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in __exit__)
        self._proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        METER.track(self._proc.pid)
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        assert self._proc is not None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the server exited with {self._proc.returncode}:\n{tail}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server was not ready after {START_TIMEOUT_S:g} s")

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            stop_process(self._proc, timeout=20)
            METER.untrack(self._proc.pid)  # reaped: its CPU time is now our children's time
            self._proc = None
            self._log.close()

    def metric(self, name: str) -> float:
        """The value of an unlabelled series in GET /metrics (e.g. a histogram's _sum)."""
        text = httpx.get(f"{self.url}/metrics", timeout=10.0).text
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise KeyError(f"{name} is not in /metrics")
