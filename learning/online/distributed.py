"""Data-parallel PPO over processes (``torchrun``): one environment batch per rank.

Every rank steps its own environments, computes the PPO loss on its own rollouts and averages
gradients with the others before each optimiser step (DDP-style all-reduce), so all ranks keep
identical networks. Statistics that steer training (approximate KL for the adaptive learning
rate, advantage normalisation, observation normaliser updates) are reduced over all ranks too, so
``R`` ranks with ``N`` environments each take the same update as one process with ``R x N``.
Rank 0 alone logs, evaluates and writes checkpoints.

Launch (1 node x 8 GPUs):  ``torchrun --nproc_per_node 8 -m unio4.cli train online ...``
Launch (2 nodes x 8 GPUs): ``torchrun --nnodes 2 --nproc_per_node 8 --rdzv_backend c10d
--rdzv_endpoint HOST:29500 -m unio4.cli train online ...`` on each node. NCCL on GPUs, gloo on CPU.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistContext:
    """This process's place in a ``torchrun`` job (rank, world size, local rank); one process: rank 0 of 1."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Whether this process logs and writes checkpoints (rank 0)."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """Whether there is more than one process."""
        return self.world_size > 1


SINGLE = DistContext()


def init_from_env() -> DistContext:
    """Join the process group that ``torchrun`` describes in the environment; single-process otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return SINGLE
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        if torch.cuda.is_available():  # NCCL: every rank on its own GPU (train with device: cuda)
            torch.cuda.set_device(local_rank)
            dist.init_process_group("nccl")
        else:
            dist.init_process_group("gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank)


def average_gradients(params: Iterable[nn.Parameter], ctx: DistContext) -> None:
    """Replace every gradient by its mean over ranks (one flat all-reduce)."""
    if not ctx.enabled:
        return
    grads = [p.grad for p in params if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= ctx.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_module(module: nn.Module, ctx: DistContext) -> None:
    """Rank 0's parameters and buffers everywhere (identical starting networks)."""
    if ctx.enabled:
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def mean_over_ranks(values: dict[str, float], ctx: DistContext) -> dict[str, float]:
    """The mean of each value over all ranks (the values themselves with one process)."""
    if not ctx.enabled:
        return values
    # NCCL reduces GPU tensors only; gloo, CPU ones
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    flat = torch.tensor(list(values.values()), dtype=torch.float64, device=device)
    dist.all_reduce(flat)
    return dict(zip(values, (flat / ctx.world_size).tolist()))


def gather_rows(x: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Every rank's rows of ``x`` (same shape on each rank), concatenated in rank order."""
    if not ctx.enabled:
        return x
    parts = [torch.empty_like(x) for _ in range(ctx.world_size)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def global_moments(x: torch.Tensor, ctx: DistContext) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (unbiased) standard deviation of ``x`` pooled over all ranks; the deviation of one value is 0
    (not NaN: a rollout cut short can leave a minibatch of one sample).
    """
    if not ctx.enabled:
        return x.mean(), x.std() if x.numel() > 1 else torch.zeros((), dtype=x.dtype, device=x.device)
    stats = torch.stack([x.sum(), x.square().sum(), torch.tensor(float(x.numel()), device=x.device)]).double()
    dist.all_reduce(stats)
    total, squares, count = stats.tolist()
    mean = total / count
    var = (squares - count * mean * mean) / max(count - 1, 1)
    return torch.tensor(mean, dtype=x.dtype, device=x.device), torch.tensor(max(var, 0.0) ** 0.5, dtype=x.dtype, device=x.device)


def shutdown(ctx: DistContext) -> None:
    """Leave the process group (nothing with one process)."""
    if ctx.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def exit_process(ctx: DistContext, code: int) -> int:
    """``code``, returned with one process; with several, the process ends here with it, output flushed. Gloo's
    worker threads can outlive ``destroy_process_group`` and abort the interpreter's teardown (SIGABRT, "terminate
    called without an active exception": 3 of 24 two-process runs on two busy cores), so the teardown is skipped.
    """
    if not ctx.enabled:
        return code
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
