"""Single-process or ``torchrun`` multi-process training: ranks, devices, collectives.

Under ``torchrun`` (WORLD_SIZE > 1) the process group uses NCCL on CUDA and gloo on
CPU; one process per device. Only rank 0 writes files; every rank takes its share of
each batch and of the dev clips, and results are gathered so all ranks decide alike.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


class DistributedError(RuntimeError):
    """The torchrun environment cannot be used as asked (e.g. CUDA asked but absent)."""


@dataclass(frozen=True)
class Dist:
    rank: int  # this process among all
    world: int  # processes in all (1 = plain single-process run)
    local_rank: int  # this process on its machine: its CUDA device index
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def gather(self, items: list[Any]) -> list[list[Any]]:
        """Every rank's list, indexed by rank (on every rank)."""
        if not self.active:
            return [items]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, items)
        return out

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank."""
        if not self.active:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def sync_buffers(self, module: torch.nn.Module) -> None:
        """Copy rank 0's buffers (BatchNorm running statistics) to every rank: DDP syncs
        them at the start of each forward, so after the last step they differ."""
        if self.active:
            for buffer in module.buffers():
                dist.broadcast(buffer, src=0)

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over ranks."""
        if not self.active:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self._collective_device())
        dist.all_reduce(t)
        return t.cpu().tolist()

    def _collective_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


def pick_device(choice: str, local_rank: int = 0) -> torch.device:
    if choice not in ("auto", "cpu", "cuda"):
        raise DistributedError(f"device must be auto, cpu or cuda, got {choice!r}")
    if choice == "cuda" and not torch.cuda.is_available():
        raise DistributedError("device 'cuda' asked for, but torch sees no CUDA device")
    if choice != "cpu" and torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def setup(device_choice: str) -> Dist:
    """Join the torchrun process group when WORLD_SIZE > 1; otherwise a world of one."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_choice, local_rank)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return Dist(rank=rank, world=world, local_rank=local_rank, device=device)


def teardown(state: Dist) -> None:
    if state.active and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
