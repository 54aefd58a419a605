"""deploy/rolling-restart.sh run for real against a stand-in `docker` command (there is no
Docker engine here): containers are restarted one at a time, each only once the one
before is healthy again, and the script stops at a replica that never becomes healthy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.support import REPO_ROOT

pytestmark = pytest.mark.server  # starts its own server processes

SCRIPT = REPO_ROOT / "deploy" / "rolling-restart.sh"

# The few docker commands the script uses. State in $FAKE_DOCKER_STATE: the containers, how
# many health inspections each answers "starting" after a restart, and an event log.
FAKE_DOCKER = """#!{python}
import json, os, sys
path = os.environ["FAKE_DOCKER_STATE"]
state = json.load(open(path))
args = sys.argv[1:]
if args[:3] == ["compose", "ps", "-q"]:
    print("\\n".join(state["containers"]) if args[3] == "replica" else "")
elif args[0] == "restart":
    cid = args[-1]
    state["events"].append(["restart", cid])
    state["starting"][cid] = state["start_polls"].get(cid, 1)
elif args[0] == "inspect" and "Health" in args[2]:
    cid = args[3]
    if state["starting"].get(cid, 0) > 0:
        state["starting"][cid] -= 1
        print("starting")
    else:
        state["events"].append(["healthy", cid])
        print("healthy")
elif args[0] == "inspect":
    print("/liveness-" + args[3])
else:
    sys.exit("unexpected docker call: " + " ".join(args))
json.dump(state, open(path, "w"))
"""


def run_script(tmp_path: Path, containers: list[str], start_polls: dict[str, int], **env):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER.format(python=sys.executable))
    docker.chmod(0o755)
    state = tmp_path / "state.json"
    state.write_text(
        json.dumps(
            {"containers": containers, "start_polls": start_polls, "starting": {}, "events": []}
        )
    )
    run = subprocess.run(
        ["sh", str(SCRIPT)],
        env={
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_DOCKER_STATE": str(state),
            "GRACE": "0",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    return run, json.loads(state.read_text())["events"]


def test_replicas_restart_one_at_a_time_each_after_the_last_is_healthy(tmp_path):
    run, events = run_script(tmp_path, ["r1", "r2", "r3"], {"r2": 2})
    assert run.returncode == 0, run.stderr
    restarted = [e for e in events if e[0] == "restart"]
    assert restarted == [["restart", "r1"], ["restart", "r2"], ["restart", "r3"]]
    # between two restarts the first came back healthy
    for (_, cid), (_, nxt) in zip(restarted, restarted[1:], strict=False):
        between = events[events.index(["restart", cid]) + 1 : events.index(["restart", nxt])]
        assert ["healthy", cid] in between
    assert events[-1] == ["healthy", "r3"]
    assert "3 replica container(s) restarted" in run.stdout


def test_a_replica_that_never_gets_healthy_stops_the_rollout(tmp_path):
    run, events = run_script(tmp_path, ["r1", "r2"], {"r1": 1000}, HEALTH_TIMEOUT="2")
    assert run.returncode == 1
    assert [e for e in events if e[0] == "restart"] == [["restart", "r1"]]  # r2 left serving
    assert "not healthy after 2 s" in run.stderr


def test_no_running_replica_is_an_error(tmp_path):
    run, events = run_script(tmp_path, [], {})
    assert run.returncode == 1 and events == []
    assert "no running replica container" in run.stderr
