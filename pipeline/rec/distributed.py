"""Data-parallel training under torchrun (`torchrun --nproc_per_node N -m stages.train_rec <variant>`).

Every rank draws the same micro-batches in the same order (same seed, same rng calls) and computes
only those whose index within the optimizer step it owns (index % world == rank); the gradients are
summed across ranks before clipping, and every rank takes the same optimizer step. N processes thus
train the weights one process trains with the same global batch (batch_size x grad_accum), up to
float summation order. With LoRA dropout > 0 each rank draws its own dropout masks (as any DDP run
does), so such runs match one process in distribution, not number for number. gloo on CPU; with
CUDA, gloo for CPU tensors and NCCL for CUDA tensors. Only rank 0 validates and writes outputs.
A plain `python -m ...` run (no WORLD_SIZE, or 1) is world 1 and none of this does anything.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterable, Iterator

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    """True on the process that validates and writes outputs (rank 0, or the only process)."""
    return rank() == 0


def owns(micro_batch: int) -> bool:
    """Whether this rank computes micro-batch `micro_batch` (0-based within one optimizer step)."""
    return micro_batch % world_size() == rank()


@contextmanager
def process_group() -> Iterator[None]:
    """Join torchrun's process group (env:// rendezvous: RANK, WORLD_SIZE, MASTER_ADDR/PORT) when
    WORLD_SIZE > 1, and leave it on exit; otherwise do nothing."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        yield
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("cpu:gloo,cuda:nccl")
    else:
        dist.init_process_group("gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


def threads_per_process(threads: int) -> int:
    """`threads` (params.yaml's CPU threads for the whole job) split among this machine's ranks."""
    return max(1, threads // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def sum_gradients(parameters: Iterable[torch.nn.Parameter]) -> None:
    """Replace each parameter's gradient by its sum over ranks (a rank that computed no micro-batch
    for it contributes zeros); one all-reduce per dtype and device."""
    if world_size() == 1:
        return
    groups: dict[tuple, list[torch.nn.Parameter]] = {}
    for p in parameters:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        groups.setdefault((p.grad.dtype, p.grad.device), []).append(p)
    for group in groups.values():
        flat = torch.cat([p.grad.reshape(-1) for p in group])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for p in group:
            p.grad.copy_(flat[offset: offset + p.grad.numel()].view_as(p.grad))
            offset += p.grad.numel()


def sum_over_ranks(totals: dict) -> dict:
    """`totals` (numbers) summed over ranks, ints kept ints: every rank gets the whole step's log."""
    if world_size() == 1:
        return totals
    keys = list(totals)
    values = torch.tensor([float(totals[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return {k: int(round(v)) if isinstance(totals[k], int) else float(v) for k, v in zip(keys, values.tolist())}
