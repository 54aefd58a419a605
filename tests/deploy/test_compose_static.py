"""Dockerfile, .dockerignore, docker-compose.yml, .env.example and the nginx template
checked against the project they deploy: files, Makefile targets, extras, commands, routes,
ports and every LIVENESS_* name. `docker compose config` runs where the plugin exists."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib

import pytest
import yaml

from liveness.cli import subcommands
from service.settings import Settings
from tests.deploy.dockerfile import (
    copy_sources,
    dockerignore_excludes,
    parse_dockerfile,
)
from tests.deploy.support import REPO_ROOT, TEMPLATE, TEMPLATE_NAMES, render_template

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
EXTRAS = PYPROJECT["project"]["optional-dependencies"]
SETTING_VARS = {"LIVENESS_" + name.upper() for name in Settings.model_fields}
GLOBAL_ARGS, STAGES = parse_dockerfile((REPO_ROOT / "Dockerfile").read_text())
STAGE = {s.name: s for s in STAGES}
FINAL = ("runtime", "gpu")  # what `docker build` and `--target gpu` produce
COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
LIVENESS_SERVICES = ("api", "api-gpu", "replica")


def app_paths() -> set[str]:
    """The HTTP paths the app documents (its OpenAPI schema)."""
    from service.app import create_app

    return set(create_app(Settings()).openapi()["paths"])


# -- Dockerfile ---------------------------------------------------------------------------
def test_the_default_target_is_the_cpu_image_and_the_gpu_one_is_cuda_with_cudnn():
    assert STAGES[-1].name == "runtime"  # `docker build .` builds the last stage
    assert STAGE["runtime"].base.startswith("python:3.11-slim")
    assert re.fullmatch(
        r"nvidia/cuda:\d+\.\d+\.\d+-cudnn-runtime-ubuntu\d+\.\d+", STAGE["gpu"].base
    )


def test_copy_takes_files_that_exist_and_that_dockerignore_lets_through():
    ignore = (REPO_ROOT / ".dockerignore").read_text()
    copied = set()
    for stage in STAGES:
        for instruction in stage.all("COPY"):
            for source in copy_sources(instruction):
                assert (REPO_ROOT / source).exists(), f"{stage.name}: COPY {source}: no such file"
                assert not dockerignore_excludes(ignore, source), f"{source} is dockerignored"
                copied.add(source.rstrip("/"))
    # what `pip install .` needs: the build files, the readme and the serving packages
    assert {"Makefile", "pyproject.toml", PYPROJECT["project"]["readme"]} <= copied
    assert {"liveness", "model", "service"} <= copied and "training" not in copied
    # the embedded model travels with model/, unless ignored
    assert not dockerignore_excludes(ignore, "model/weights/default/manifest.json")
    for left_out in (".venv/bin/python", "tests/conftest.py", "artifacts/x", ".git/HEAD"):
        assert dockerignore_excludes(ignore, left_out), left_out
    assert dockerignore_excludes(ignore, "model/__pycache__/cli.cpython-311.pyc")


def make_dry_run(command: str, tmp_path) -> str:
    """The recipes `make -n` prints for a Dockerfile's make command (VENV moved to tmp)."""
    words = command.split()
    words = [f"VENV={tmp_path / 'venv'}" if w.startswith("VENV=") else w for w in words]
    run = subprocess.run(
        ["make", "-n", *words[1:]], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.mark.parametrize(
    ("build", "target"), [("build", "install-serve"), ("gpu-build", "install-gpu")]
)
def test_the_image_installs_with_the_makefile_targets(build, target, tmp_path):
    (run,) = [i for i in STAGE[build].all("RUN") if re.search(r"\bmake install-", i.args)]
    command = run.args[run.args.index("make install-") :]
    assert command.split()[:2] == ["make", target]
    assert "EDITABLE=" in command.split() and "VENV=/opt/venv" in command.split()
    recipes = make_dry_run(command, tmp_path)
    installs = [line for line in recipes.splitlines() if " install " in f"{line} "]
    assert installs and all(" -e " not in line for line in installs)  # a wheel, not editable
    assert any('".[serve]"' in line for line in installs)
    if target == "install-gpu":
        lines = recipes.splitlines()
        uninstall = next(i for i, x in enumerate(lines) if "uninstall" in x and "onnxruntime" in x)
        gpu = next(i for i, x in enumerate(lines) if '["gpu"]' in x and " install " in x)
        assert uninstall < gpu  # the CPU wheel goes before the GPU one comes


def test_the_serving_extras_hold_no_torch_and_gpu_replaces_onnxruntime():
    serving = PYPROJECT["project"]["dependencies"] + EXTRAS["serve"]
    assert not [r for r in serving if re.match(r"torch\b", r)]
    assert any(r.startswith("onnxruntime") for r in PYPROJECT["project"]["dependencies"])
    assert [re.split(r"[<>=!~ ;\[]", r)[0] for r in EXTRAS["gpu"]] == ["onnxruntime-gpu"]


@pytest.mark.parametrize("name", FINAL)
def test_final_stages_serve_as_a_non_root_user_with_a_health_check(name):
    stage = STAGE[name]
    assert stage.one("USER").args not in ("root", "0")
    assert stage.one("COPY").args.startswith("--from=")  # only the built environment
    env = stage.env()
    assert {k for k in env if k.startswith("LIVENESS_")} <= SETTING_VARS
    assert env["LIVENESS_HOST"] == "0.0.0.0"
    assert stage.one("EXPOSE").args == env["LIVENESS_PORT"] == "8000"
    assert stage.one("VOLUME").exec_form() == ["/models"]
    entrypoint, cmd = stage.one("ENTRYPOINT").exec_form(), stage.one("CMD").exec_form()
    assert entrypoint == list(PYPROJECT["project"]["scripts"]) == ["liveness"]
    assert cmd == ["serve"] and cmd[0] in subcommands()
    probe = stage.one("HEALTHCHECK").exec_form()
    assert probe[:2] == ["python", "-c"] and "/healthz" in probe[2]
    assert "/healthz" in app_paths()


@pytest.mark.parametrize("name", FINAL)
def test_final_stages_run_in_an_empty_working_directory_the_user_cannot_write(name):
    stage = STAGE[name]
    workdir = stage.one("WORKDIR").args
    assert workdir.startswith("/") and workdir not in ("/", "/tmp", "/models", "/opt/venv")
    runs = " ".join(i.args for i in stage.all("RUN"))
    assert re.search(rf"\bmkdir\b[^&;]*\s{re.escape(workdir)}(\s|$)", runs)  # made by root
    assert not re.search(rf"\b(chown|chmod|chgrp)\b[^&;]*{re.escape(workdir)}", runs)
    for instruction in stage.all("COPY") + stage.all("ADD"):  # nothing is put in it
        assert workdir not in instruction.args and not instruction.args.split()[-1].startswith(".")
    keywords = [i.keyword for i in stage.instructions]
    assert keywords.index("WORKDIR") < keywords.index("USER")
    assert stage.one("USER").args == "liveness"


def test_gpu_and_cpu_images_probe_and_start_alike():
    cpu, gpu = STAGE["runtime"], STAGE["gpu"]
    for keyword in ("WORKDIR", "USER", "EXPOSE", "VOLUME", "HEALTHCHECK", "ENTRYPOINT", "CMD"):
        assert cpu.one(keyword).args == gpu.one(keyword).args, keyword
    assert gpu.env()["LIVENESS_PROVIDERS"] == "cuda"


# -- docker-compose.yml and .env.example ----------------------------------------------------
def compose_variables() -> dict[str, str]:
    """${NAME:-default} substitutions of docker-compose.yml: name -> default."""
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    found = re.findall(r"\$\{(\w+)(?::-([^}]*))?\}", text)
    assert all(default for _, default in found), "every variable needs a default"
    return dict(found)


def env_example() -> dict[str, str]:
    lines = (REPO_ROOT / ".env.example").read_text().splitlines()
    return dict(
        re.fullmatch(r"#(\w+)=(.*)", x).groups() for x in lines if re.fullmatch(r"#\w+=.*", x)
    )


def test_compose_services_profiles_ports_and_builds():
    assert set(SERVICES) == {"api", "api-gpu", "replica", "nginx"}
    assert "profiles" not in SERVICES["api"]  # `docker compose up` starts it
    assert SERVICES["api-gpu"]["profiles"] == ["gpu"]
    assert SERVICES["replica"]["profiles"] == SERVICES["nginx"]["profiles"] == ["scale"]
    for name in ("api", "api-gpu"):
        assert SERVICES[name]["ports"] == ["${PUBLISHED_PORT:-8000}:8000"]
    assert "ports" not in SERVICES["replica"]  # scaled: only nginx publishes
    assert SERVICES["nginx"]["ports"] == ["${PUBLISHED_PORT:-8000}:8080"]
    for name, target in (("api", "runtime"), ("replica", "runtime"), ("api-gpu", "gpu")):
        assert SERVICES[name]["build"] == {"context": ".", "target": target}
        assert target in STAGE
    (device,) = SERVICES["api-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]


@pytest.mark.parametrize("name", LIVENESS_SERVICES)
def test_compose_services_listen_where_their_health_check_and_nginx_look(name):
    service = SERVICES[name]
    env = service["environment"]
    assert env["LIVENESS_HOST"] == "0.0.0.0" and env["LIVENESS_PORT"] == "8000"
    assert {k for k in env if k.startswith("LIVENESS_")} <= SETTING_VARS
    probe = service["healthcheck"]["test"]
    assert probe[:3] == ["CMD", "python", "-c"]
    assert "http://127.0.0.1:8000/readyz" in probe[3] and "/readyz" in app_paths()
    assert service["env_file"] == [{"path": ".env", "required": False}]
    assert service["volumes"] == ["${MODELS_DIR:-./models}:/models:ro"]


def test_nginx_service_renders_the_repository_template_for_the_replicas():
    nginx = SERVICES["nginx"]
    source, target, mode = nginx["volumes"][0].split(":")
    assert (REPO_ROOT / source).resolve() == TEMPLATE and mode == "ro"
    assert target.startswith("/etc/nginx/templates/") and target.endswith(".conf.template")
    env = nginx["environment"]
    assert set(env) == set(TEMPLATE_NAMES)
    rendered = render_template(TEMPLATE.read_text(), env)  # every name given, none left
    assert "server replica:8000 resolve;" in rendered
    assert f"listen {env['NGINX_LISTEN']};" in rendered and nginx["ports"][0].endswith(":8080")
    assert nginx["depends_on"] == {"replica": {"condition": "service_healthy"}}
    assert "/readyz" in " ".join(nginx["healthcheck"]["test"])
    # `server ... resolve` exists in open-source nginx from 1.27.3 on
    version = re.fullmatch(r"nginx:(\d+)\.(\d+)(?:\.(\d+))?-alpine", nginx["image"]).groups()
    assert tuple(int(v or 0) for v in version) >= (1, 27, 3)


def directive(block: str, name: str) -> str:
    (value,) = re.findall(rf"^\s*{name}\s+([^;]+);", block, re.MULTILINE)
    return value.strip()


def seconds(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(s|m|h)?", value).groups()
    return int(number) * {"s": 1, "m": 60, "h": 3600, None: 1}[unit]


def test_nginx_template_limits_leave_the_service_to_enforce_its_own():
    names = dict.fromkeys(TEMPLATE_NAMES, "x")
    text = render_template(TEMPLATE.read_text(), {**names, "NGINX_UPSTREAM_SERVERS": "server a;"})
    defaults = Settings()
    stream = re.search(r"location = /v1/stream \{(.*?)\}", text, re.DOTALL)[1]
    assert seconds(directive(stream, "proxy_read_timeout")) > defaults.stream_max_seconds
    assert seconds(directive(stream, "proxy_send_timeout")) > defaults.stream_max_seconds
    size = directive(text, "client_max_body_size")
    assert int(size.rstrip("m")) * 1024 * 1024 > defaults.max_upload_bytes
    upstream = re.search(r"upstream liveness_replicas \{(.*?)\}", text, re.DOTALL)[1]
    assert upstream.index("least_conn") < upstream.index("keepalive")  # nginx requires it
    assert "zone " in upstream  # `resolve` needs the peers in shared memory


def test_nginx_template_cuts_slow_and_huge_headers_as_the_service_does():
    names = dict.fromkeys(TEMPLATE_NAMES, "x")
    text = render_template(TEMPLATE.read_text(), {**names, "NGINX_UPSTREAM_SERVERS": "server a;"})
    defaults = Settings()
    assert seconds(directive(text, "client_header_timeout")) <= defaults.header_timeout_seconds
    count, size = directive(text, "large_client_header_buffers").split()
    assert int(count) * int(size.rstrip("k")) * 1024 <= defaults.max_header_bytes
    assert seconds(directive(text, "client_body_timeout")) <= 60
    assert seconds(directive(text, "send_timeout")) <= defaults.stream_send_timeout_seconds
    # the stream's Origin check compares with the Host the browser asked for, port included
    assert directive(text, "proxy_set_header Host") == "$http_host"
    # failed credentials are counted per client address: nginx's view of it, not the client's
    assert directive(text, "proxy_set_header X-Forwarded-For") == "$remote_addr"
    assert SERVICES["replica"]["environment"]["FORWARDED_ALLOW_IPS"] == "*"
    assert "ports" not in SERVICES["replica"]  # only nginx can reach a replica


def test_every_liveness_setting_is_in_env_example_and_nothing_else():
    listed = env_example()
    assert {k for k in listed if k.startswith("LIVENESS_")} == SETTING_VARS
    assert {k: v for k, v in listed.items() if not k.startswith("LIVENESS_")} == compose_variables()


def test_env_example_values_are_the_settings_defaults(monkeypatch):
    """Each value written in .env.example, read as the server reads its environment."""
    for var in SETTING_VARS:
        monkeypatch.delenv(var, raising=False)
    defaults = Settings()
    checked = 0
    for var, value in env_example().items():
        if not var.startswith("LIVENESS_") or not value:
            continue
        with monkeypatch.context() as m:
            m.setenv(var, value)
            field = var.removeprefix("LIVENESS_").lower()
            assert getattr(Settings(), field) == getattr(defaults, field), var
            checked += 1
    assert checked >= 20


def test_deployment_doc_table_and_env_example_are_generated_from_the_settings():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "settings_doc", REPO_ROOT / "deploy" / "settings_doc.py"
    )
    doc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(doc)
    page = (REPO_ROOT / "docs" / "deployment.md").read_text()
    message = "out of date: run `make settings-doc`"
    assert doc.page_with_table(page) == page, f"docs/deployment.md settings table {message}"
    assert doc.env_example() == (REPO_ROOT / ".env.example").read_text(), f".env.example {message}"
    table = page[page.index(doc.BEGIN) : page.index(doc.END)]
    assert {f"`{v}`" for v in SETTING_VARS} <= set(re.findall(r"`LIVENESS_\w+`", table))


# -- docker compose itself, where installed -------------------------------------------------
def compose_plugin() -> bool:
    if shutil.which("docker") is None:
        return False
    run = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    return run.returncode == 0


@pytest.mark.skipif(not compose_plugin(), reason="no `docker compose` plugin on this machine")
@pytest.mark.parametrize("profile", [None, "gpu", "scale"])
def test_docker_compose_config_accepts_the_file(profile):
    cmd = ["docker", "compose", "-f", "docker-compose.yml"]
    cmd += ["--profile", profile] if profile else []
    run = subprocess.run(
        [*cmd, "config", "--quiet"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
