"""Loopback stand-ins for the compose scale-out: `liveness serve` replicas and a real nginx.

nginx runs the repository's template (deploy/nginx/liveness.conf.template), rendered the way
the nginx image's envsubst step renders it, with loopback addresses for the replicas and a
small main context of its own (temp paths, pid and logs under a temporary prefix).
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.server import stop_process
from tests.helpers import wait_until_ready

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "deploy" / "nginx" / "liveness.conf.template"
TEMPLATE_NAMES = ("NGINX_LISTEN", "NGINX_RESOLVER", "NGINX_UPSTREAM_SERVERS")
READY_TIMEOUT_S = 120.0

# Replica settings for the tests: one ONNX thread, no frame-rate drops (the tests send frames
# as fast as the answers come back), small limits.
REPLICA_ENV = {
    "LIVENESS_PROVIDERS": "cpu",
    "LIVENESS_THREADS": "1",
    "LIVENESS_CPU_WORKERS": "1",
    "LIVENESS_LOG_LEVEL": "warning",
    "LIVENESS_MAX_STREAM_FPS": "1000",
    "LIVENESS_BATCH_MAX_WAIT_MS": "2",
}


class TemplateError(ValueError):
    """The template and the values given for it do not match."""


def render_template(text: str, values: dict[str, str]) -> str:
    """``${NAME}`` replaced for each given name, as envsubst does with a list of names.

    Every name given must occur, and no upper-case ``$NAME`` may be left: a leftover would be
    an nginx variable that does not exist, or a name compose does not set.
    """
    for name, value in values.items():
        if "${" + name + "}" not in text:
            raise TemplateError(f"${{{name}}} does not occur in the template")
        text = text.replace("${" + name + "}", value)
    left = sorted(set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text)))
    if left:
        raise TemplateError(f"names left unsubstituted: {', '.join(left)}")
    return text


def find_nginx() -> Path | None:
    """The nginx binary (Debian puts it in /usr/sbin, not always on a user's PATH)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    return Path(found) if found else None


def _main_context(prefix: Path, server_conf: Path) -> str:
    """A main nginx.conf around the rendered server file, everything under ``prefix``."""
    user = ""
    if os.geteuid() == 0:  # workers would switch to `nobody`, who cannot enter the temp dirs
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"
    temp = {
        "client_body_temp_path": "client_body",
        "proxy_temp_path": "proxy",
        "fastcgi_temp_path": "fastcgi",
        "uwsgi_temp_path": "uwsgi",
        "scgi_temp_path": "scgi",
    }
    temp_lines = "\n".join(f"    {k} {prefix / v};" for k, v in temp.items())
    return f"""{user}
daemon off;
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} info;
events {{ worker_connections 256; }}
http {{
{temp_lines}
    include {server_conf};
}}
"""


@dataclass
class Nginx:
    """A running nginx: ``url`` to send to, ``access_log`` of its per-request lines."""

    url: str
    proc: subprocess.Popen
    prefix: Path
    access_log: Path

    def log_lines(self) -> list[str]:
        return self.access_log.read_text().splitlines()

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_nginx(binary: Path, prefix: Path, port: int, upstreams: list[str]) -> Nginx:
    """nginx on 127.0.0.1:port with the repository template, balancing over ``upstreams``."""
    prefix.mkdir(parents=True, exist_ok=True)
    servers = " ".join(f"server {address};" for address in upstreams)
    rendered = render_template(
        TEMPLATE.read_text(),
        {
            "NGINX_LISTEN": f"127.0.0.1:{port}",
            # Asked only for `resolve` servers; loopback addresses need no DNS.
            "NGINX_RESOLVER": "127.0.0.1",
            "NGINX_UPSTREAM_SERVERS": servers,
        },
    )
    server_conf = prefix / "liveness.conf"
    server_conf.write_text(rendered)
    main_conf = prefix / "nginx.conf"
    main_conf.write_text(_main_context(prefix, server_conf))
    access_log = prefix / "access.log"  # the template logs to /dev/stdout
    cmd = [str(binary), "-p", str(prefix), "-c", str(main_conf), "-e", str(prefix / "error.log")]
    with access_log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    nginx = Nginx(f"http://127.0.0.1:{port}", proc, prefix, access_log)
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited ({proc.returncode}): {nginx.error_log()}")
        try:
            httpx.get(nginx.url + "/healthz", timeout=2)
            return nginx
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            nginx.stop()
            raise RuntimeError(f"nginx did not listen in 20 s: {nginx.error_log()}")
        time.sleep(0.1)


@dataclass
class Replica:
    """One `liveness serve` process on a loopback port."""

    port: int
    model_dir: Path
    log: Path
    proc: subprocess.Popen = field(repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def metrics(self) -> str:
        return httpx.get(self.url + "/metrics", timeout=10).text

    def stop(self) -> None:
        """SIGTERM, as `docker stop` sends: uvicorn stops listening, then drains."""
        stop_process(self.proc)


def start_replica(model_dir: Path, port: int, log: Path) -> Replica:
    """Start `liveness serve`, its output to ``log`` (not waiting for it: see ``wait_ready``)."""
    env = {**os.environ, **REPLICA_ENV, "LIVENESS_MODEL_DIR": str(model_dir)}
    env["PYTHONPATH"] = str(REPO_ROOT)
    cmd = [sys.executable, "-m", "liveness", "serve", "--port", str(port)]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Replica(port, model_dir, log, proc)


def wait_ready(replica: Replica, timeout: float = READY_TIMEOUT_S) -> None:
    wait_until_ready(replica.proc, replica.url, replica.log, timeout, f"replica {replica.address}")


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample by name and labels; 0 when the series is absent
    (a labelled counter has no line until its first increment)."""
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m is None or m["name"] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', m["labels"] or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(m["value"])
    return 0.0
