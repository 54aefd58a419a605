"""Training the CNN-LSTM with the joint loss: ``train(config, run_dir)``.

One epoch: class-balanced, augmented windows of T encoded frames from the cached clips
(training/train/data.py), Adam on CE(window) + lambda * CE(frames), then the dev clips
scored the way the service scores them (mean P(genuine) over tile windows) -> dev EER,
and the HTER at that EER's threshold. Checkpoints every epoch (training/train/state.py),
early stopping on the dev EER, one JSON line per epoch in ``metrics.jsonl``. Under
``torchrun`` the same function runs DDP (training/train/dist.py).
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from model.backbones import WeightsError
from model.config import SILENT_FACE
from model.network import (
    LivenessNet,
    build_network,
    load_minifasnet_weights,
    load_mobilenet_v2_weights,
    load_vgg16_weights,
)
from training.config import TrainConfig, save_config
from training.train.data import DataError, WindowPool
from training.train.dev import TrainingData, evaluate_dev, evaluate_test, prepare_data
from training.train.dist import Dist, setup, teardown
from training.train.features import FrozenTail, encode_clips
from training.train.state import (
    BEST_NAME,
    LAST_NAME,
    CheckpointError,
    EarlyStopping,
    joint_loss,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)

METRICS_NAME = "metrics.jsonl"
TEST_METRICS_NAME = "test_metrics.json"  # best.pt on test_data, at the dev EER threshold
# Settings that may differ when a run is resumed: they change how, not what, it computes.
RUN_ONLY_KEYS = ("progress", "num_threads", "device", "cache_root", "cache_workers")

EpochCallback = Callable[[dict[str, Any]], None]


@dataclass
class TrainResult:
    run_dir: Path
    epochs: int  # epochs completed
    steps: int  # optimizer steps taken
    best_epoch: int
    best_dev_eer: float
    stopped: str  # "epochs", "early_stop" or "max_steps"
    net: LivenessNet  # the weights after the last epoch (best.pt holds the best epoch's)
    history: list[dict[str, Any]] = field(default_factory=list)  # this call's epoch logs


def build_model(config: TrainConfig) -> LivenessNet:
    """The network of ``config``, its encoder initialised from ``init_weights`` and its
    first ``freeze_blocks`` feature modules frozen."""
    from training.pretrained import load_state_dict

    net = build_network(config.network)
    if config.init_weights:
        if config.init_weights == SILENT_FACE:  # the shipped MiniFASNet files, sha256-checked
            load_minifasnet_weights(net.encoder)
            freeze_blocks(net, config.freeze_blocks)
            return net
        weights = load_state_dict(config.init_weights)
        if config.network.backbone == "mobilenet_v2":
            load_mobilenet_v2_weights(net.encoder, weights)
        elif config.network.backbone == "vgg16":
            load_vgg16_weights(net.encoder, weights)
        else:
            raise WeightsError(
                f"init_weights: backbone {config.network.backbone!r} has no torchvision "
                "checkpoint to load (use vgg16 or mobilenet_v2)"
            )
    freeze_blocks(net, config.freeze_blocks)
    return net


def frozen_modules(net: LivenessNet, blocks: int) -> list[torch.nn.Module]:
    features = net.encoder.features
    if blocks > len(features):
        raise WeightsError(
            f"freeze_blocks {blocks}: the {net.config.backbone} stack has {len(features)} modules"
        )
    return list(features[:blocks])


def freeze_blocks(net: LivenessNet, blocks: int) -> None:
    """No gradient for the first ``blocks`` modules of ``net.encoder.features``."""
    for module in frozen_modules(net, blocks):
        for p in module.parameters():
            p.requires_grad_(False)


def train_mode(net: torch.nn.Module, base: LivenessNet, blocks: int) -> None:
    """``net.train()``, with the frozen modules' BatchNorm kept on its running statistics."""
    net.train()
    for module in frozen_modules(base, blocks):
        module.eval()


def cache_frozen_maps(net: LivenessNet, data: TrainingData, config: TrainConfig, state: Dist):
    """Replace every clip of ``data`` by its frozen maps (training/train/features.py), in place;
    the training clips also get their ``feature_copies`` augmented renderings."""
    progress = config.progress and state.is_main
    for name, clips, copies in (
        ("train", data.pool.clips, config.feature_copies),
        ("dev", data.dev_clips, 0),
        ("test", data.test_clips, 0),
    ):
        clips[:] = encode_clips(
            net,
            clips,
            config.network,
            config.freeze_blocks,
            state.device,
            store=config.resolved_cache_root(),
            copies=copies,
            seed=config.seed,
            progress=progress,
            desc=f"frozen features ({name})",
        )


def _schedule(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int):
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total_steps) / total_steps))
        )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)


def _check_resume(saved: dict[str, Any], config: TrainConfig) -> None:
    ours = {k: v for k, v in config.to_dict().items() if k not in RUN_ONLY_KEYS}
    theirs = {k: v for k, v in TrainConfig.from_dict(saved).to_dict().items() if k in ours}
    diff = sorted(k for k in ours if ours[k] != theirs.get(k))
    if diff:
        raise CheckpointError(f"cannot resume: the config differs from the run's in {diff}")


def train(
    config: TrainConfig,
    run_dir: Path,
    *,
    resume: bool = False,
    callbacks: Sequence[EpochCallback] = (),
) -> TrainResult:
    """Train into ``run_dir`` (config.json, metrics.jsonl, last.pt, best.pt).

    ``resume`` continues from ``run_dir/last.pt`` (same config, apart from RUN_ONLY_KEYS).
    Each callback gets every epoch's log dict on every rank, after the checkpoints are
    written. Under torchrun this runs DDP; rank 0 writes the files.
    """
    state = setup(config.device)
    try:
        return _train(config, Path(run_dir), resume, callbacks, state)
    finally:
        teardown(state)


def _train(
    config: TrainConfig,
    run_dir: Path,
    resume: bool,
    callbacks: Sequence[EpochCallback],
    state: Dist,
) -> TrainResult:
    seed_everything(config.seed)
    torch.set_num_threads(config.num_threads or max(1, (os.cpu_count() or 1) // state.world))
    if config.batch_size % state.world:
        raise DataError(f"batch_size {config.batch_size} must divide by the {state.world} ranks")
    last = run_dir / LAST_NAME
    checkpoint = load_checkpoint(last) if resume else None
    if checkpoint is not None:
        _check_resume(checkpoint["config"], config)
    elif state.is_main and last.exists():
        raise CheckpointError(f"{run_dir} already holds a run; pass resume or use a new folder")
    if state.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir)
    data = prepare_data(config, state)

    net = build_model(config).to(state.device)
    model: torch.nn.Module = net
    if config.cache_features:
        cache_frozen_maps(net, data, config, state)
        model = FrozenTail(net, config.freeze_blocks)
    scorer = model
    if state.active:
        ids = [state.device.index] if state.device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    trainable = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=config.lr, weight_decay=config.weight_decay)
    draws_per_epoch = max(
        config.batch_size, len(data.pool) // config.batch_size * config.batch_size
    )
    steps_per_epoch = draws_per_epoch // config.batch_size
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)
    scheduler = _schedule(optimizer, config, total_steps)
    stopper = EarlyStopping(config.patience, config.min_delta)
    epoch, step, finished = 0, 0, None
    if checkpoint is not None:
        net.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        stopper.load_state_dict(checkpoint["stopper"])
        set_rng_state(checkpoint["rng"])
        epoch, step, finished = checkpoint["epoch"], checkpoint["step"], checkpoint["finished"]

    history: list[dict[str, Any]] = []
    while finished is None and epoch < config.epochs:
        started = time.perf_counter()
        train_log, step = _train_epoch(
            model, net, data.pool, config, state, epoch, step, optimizer, scheduler
        )
        state.sync_buffers(net)  # BatchNorm statistics of rank 0 on every rank
        log = {"epoch": epoch + 1, "step": step, **train_log}
        log.update(evaluate_dev(scorer, data, config, state))
        log["best"] = stopper.update(epoch + 1, log["dev_eer"], log["dev_loss"])
        epoch += 1
        if stopper.should_stop:
            finished = "early_stop"
        elif config.max_steps and step >= config.max_steps:
            finished = "max_steps"
        elif epoch >= config.epochs:
            finished = "epochs"
        finished = state.broadcast(finished)  # the ranks agree anyway: same gathered scores
        log["seconds"] = round(time.perf_counter() - started, 3)
        log["finished"] = finished
        if state.is_main:
            _write_epoch(run_dir, net, optimizer, scheduler, stopper, config, log)
        state.barrier()
        history.append(log)
        for callback in callbacks:
            callback(log)
    if history and config.test_data:
        _test_best(net, data, config, state, run_dir)
    return TrainResult(
        run_dir=run_dir,
        epochs=epoch,
        steps=step,
        best_epoch=stopper.best_epoch,
        best_dev_eer=stopper.best_eer,
        stopped=finished or "epochs",
        net=net,
        history=history,
    )


def _test_best(
    net: LivenessNet, data: TrainingData, config: TrainConfig, state: Dist, run_dir: Path
) -> None:
    """Score test_data with best.pt's weights into test_metrics.json (rank 0 writes)."""
    state.barrier()  # best.pt is complete
    best = load_checkpoint(run_dir / BEST_NAME, map_location=state.device)
    net = copy.deepcopy(net)
    net.load_state_dict(best["model"])
    scorer = FrozenTail(net, config.freeze_blocks) if config.cache_features else net
    report = evaluate_test(scorer, data, config, state)
    if state.is_main and report is not None:
        report["epoch"] = best["epoch"]
        (run_dir / TEST_METRICS_NAME).write_text(json.dumps(report, indent=2) + "\n")


def _train_epoch(
    model: torch.nn.Module,
    net: LivenessNet,
    pool: WindowPool,
    config: TrainConfig,
    state: Dist,
    epoch: int,
    step: int,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
) -> tuple[dict[str, float], int]:
    """One pass over the epoch's draws; returns (mean losses over ranks, global step)."""
    augment = None
    if config.augment:
        augment = {k: getattr(config, k) for k in ("flip_prob", "brightness", "contrast")}
    draws = pool.draw_epoch(
        config.seed,
        epoch,
        config.batch_size,
        balance=config.balance_classes,
        augment=augment,
        copies=config.feature_copies,
    )
    B = config.batch_size
    train_mode(model, net, config.freeze_blocks)
    sums = [0.0, 0.0, 0.0, 0.0, 0.0]  # total, sequence, frame loss sums; batches; seconds
    bar = tqdm(
        range(len(draws) // B),
        desc=f"epoch {epoch + 1}/{config.epochs}",
        unit="step",
        disable=not (config.progress and state.is_main),
    )
    for b in bar:
        if config.max_steps and step >= config.max_steps:
            break
        started = time.perf_counter()
        picks = list(range(b * B, (b + 1) * B))[state.rank :: state.world]
        frames, motion, targets = pool.batch(draws, picks, config.network)
        frames, targets = frames.to(state.device), targets.to(state.device)
        motion = None if motion is None else motion.to(state.device)
        loss = joint_loss(
            model(frames, motion), targets, config.frame_loss_weight, config.motion_loss_weight
        )
        optimizer.zero_grad(set_to_none=True)
        loss.total.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        step += 1
        values = [loss.total.item(), loss.sequence.item(), loss.frame.item(), 1.0]
        values.append(time.perf_counter() - started)  # .item() waited for the device
        sums = [a + v for a, v in zip(sums, values, strict=True)]
        bar.set_postfix(loss=f"{values[0]:.4f}")
    bar.close()
    total, sequence, frame, batches, seconds = state.sum(sums)
    batches = max(batches, 1.0)
    return {
        "train_loss": total / batches,
        "train_sequence_loss": sequence / batches,
        "train_frame_loss": frame / batches,
        "step_seconds": seconds / batches,  # data + forward + backward + update, per rank
        "lr": optimizer.param_groups[0]["lr"],
    }, step


def _write_epoch(
    run_dir: Path,
    net: LivenessNet,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    stopper: EarlyStopping,
    config: TrainConfig,
    log: dict[str, Any],
) -> None:
    dev = {k: v for k, v in log.items() if k.startswith("dev_")}
    common = {"config": config.to_dict(), "epoch": log["epoch"], "step": log["step"], "dev": dev}
    model = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    if log["best"]:
        save_checkpoint(run_dir / BEST_NAME, {**common, "model": model})
    save_checkpoint(
        run_dir / LAST_NAME,
        {
            **common,
            "model": model,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "stopper": stopper.state_dict(),
            "rng": rng_state(),
            "finished": log["finished"],
        },
    )
    with open(run_dir / METRICS_NAME, "a") as f:
        f.write(json.dumps(log) + "\n")
