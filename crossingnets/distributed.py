"""Distributed training under torchrun: process group, device, gradient and buffer averaging.

Gradients are averaged with one flat all-reduce after each backward pass instead of wrapping the
model in DistributedDataParallel: the GAN steps run several forward passes per backward, which the
wrapper handles badly, and batch-norm buffers are averaged the same way.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
    return device


@contextlib.contextmanager
def process_group(device_name: str) -> Iterator[Dist]:
    """Join the torchrun process group if WORLD_SIZE > 1 (NCCL on GPUs, gloo on CPUs) and leave it
    on the way out: a process that exits with gloo's threads still running aborts ("terminate
    called without an active exception"), which torchrun reports as a failed run."""
    device = resolve_device(device_name)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        yield Dist(device=device)
        return
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if dist.is_initialized():  # the caller's group: the caller leaves it
        yield Dist(dist.get_rank(), dist.get_world_size(), device)
        return
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield Dist(dist.get_rank(), dist.get_world_size(), device)
        dist.barrier()  # no process tears down its group while another still talks to it
    finally:
        dist.destroy_process_group()


def all_mean(tensors: list[torch.Tensor], world: int) -> None:
    """Average tensors in place over all processes (one flat all-reduce)."""
    if world == 1 or not tensors:
        return
    flat = torch.cat([t.reshape(-1).float() for t in tensors])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for t in tensors:
        t.copy_(flat[offset : offset + t.numel()].view_as(t))
        offset += t.numel()


def check_replicas_in_sync(model: nn.Module) -> None:
    """Every process must end with the same weights (the gradients were averaged)."""
    flat = torch.cat([p.detach().reshape(-1).float().cpu() for p in model.parameters()])
    ref = flat.clone()
    dist.broadcast(ref, 0)
    diff = torch.tensor([(flat - ref).abs().max().item()])
    dist.all_reduce(diff, op=dist.ReduceOp.MAX)
    if diff.item() > 0:
        raise RuntimeError(f"distributed replicas diverged (max weight difference {diff.item():.3g})")
