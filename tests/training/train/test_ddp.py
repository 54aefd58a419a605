"""DDP training under torchrun: two CPU processes (gloo) train one model in step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from tests.training.train_fixtures import tiny_config, tiny_dataset
from training.train.loop import METRICS_NAME
from training.train.state import BEST_NAME, LAST_NAME, load_checkpoint

# Each rank trains, then saves the weights it ended with, so the test can compare ranks.
RANK_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import torch
    from training.config import TrainConfig
    from training.train.loop import train

    config = TrainConfig.from_dict(json.loads(open(sys.argv[1]).read()))
    result = train(config, sys.argv[2])
    rank = int(os.environ["RANK"])
    torch.save(result.net.state_dict(), os.path.join(sys.argv[3], f"rank{rank}.pt"))
    with open(os.path.join(sys.argv[3], f"rank{rank}.json"), "w") as f:
        json.dump({"world": int(os.environ["WORLD_SIZE"]), "steps": result.steps,
                   "stopped": result.stopped, "epochs": result.epochs}, f)
    """
)


@pytest.mark.slow
@pytest.mark.training
def test_two_gloo_ranks_train_in_step(tmp_path, tmp_path_factory, real_clip_paths):
    dataset = tiny_dataset(tmp_path_factory.getbasetemp(), real_clip_paths)
    # patience 1 + min_delta 1: both ranks must agree to stop after epoch 2 of 5.
    config = tiny_config(dataset, tmp_path / "cache", "epochs=5", "patience=1", "min_delta=1.0")
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config.to_dict()))
    script = tmp_path / "rank_main.py"
    script.write_text(RANK_SCRIPT)
    run_dir, ranks_dir = tmp_path / "run", tmp_path / "ranks"
    ranks_dir.mkdir()
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(script), str(config_path), str(run_dir), str(ranks_dir),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    infos = [json.loads((ranks_dir / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [i["world"] for i in infos] == [2, 2]  # both ranks ran in one world of two
    assert infos[0] == infos[1]  # same steps, same stop decision
    weights = [torch.load(ranks_dir / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:  # parameters and BatchNorm statistics alike
        assert torch.equal(weights[0][key], weights[1][key]), key
    last = load_checkpoint(run_dir / LAST_NAME)
    for key in weights[0]:
        assert torch.equal(last["model"][key], weights[0][key]), key
    assert (run_dir / BEST_NAME).is_file()
    lines = [json.loads(x) for x in (run_dir / METRICS_NAME).read_text().splitlines()]
    assert len(lines) == infos[0]["epochs"]  # rank 0 alone wrote the log
    assert infos[0]["stopped"] == "early_stop" and infos[0]["epochs"] == 2
    assert last["step"] == infos[0]["steps"] > 0 and last["finished"] == "early_stop"
    # The cache was filled by both ranks, each its share, and holds every clip once.
    entries = list((tmp_path / "cache" / config.preprocess.digest()).glob("*.npz"))
    assert len(entries) == lines[0]["dev_clips"] + len(list((dataset / "train").rglob("*.mp4")))
