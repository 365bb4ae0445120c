"""What changes in the warmup under ``torch.distributed``: sharding paths, agreeing, gathering.

Every rank calls :func:`scrapl.warmup.run_warmup` with the same arguments. The paths of the range
are dealt round-robin (``paths[rank::world]``, so expensive neighbouring paths spread out), each
rank computes its share, and one ``all_reduce`` of a zero-filled table gives every rank every
value (adding zeros is exact, so the values are bit-identical on all ranks). All ranks then record
the values in path order and end with the same probabilities as a single-process run.
Collective calls run on :func:`scrapl.distributed.comm_device` (the CPU for gloo, the current CUDA
device for nccl).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import torch
import torch.distributed as dist
from torch import Tensor

from ..distributed import barrier, comm_device

__all__ = [
    "all_ok",
    "barrier",
    "broadcast_tensor",
    "check_same_config",
    "comm_device",
    "gather_vals",
    "rank_and_world",
    "shard_paths",
]


def rank_and_world(use_distributed: bool | None = None) -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` unless a default process group is initialised.

    Args:
        use_distributed: None: use torch.distributed if initialised; False: never; True: require it.

    Raises:
        ValueError: ``use_distributed=True`` without an initialised process group.
    """
    ready = dist.is_available() and dist.is_initialized()
    if use_distributed is True and not ready:
        raise ValueError("distributed=True needs torch.distributed.init_process_group() first")
    if not ready or use_distributed is False:
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def shard_paths(paths: Sequence[int], rank: int, world: int) -> list[int]:
    """The paths of ``rank``: ``paths[rank::world]``."""
    return list(paths)[rank::world]


def all_ok(ok: bool) -> bool:
    """Whether every rank passed ``ok=True`` (an all-reduce of a flag; all ranks must call it)."""
    flag = torch.tensor([1 if ok else 0], dtype=torch.int64, device=comm_device())
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def check_same_config(config_json: str) -> bool:
    """Whether every rank has the same configuration text (compares a 62-bit hash)."""
    h = int.from_bytes(hashlib.sha256(config_json.encode()).digest()[:8], "little") >> 2
    t = torch.tensor([h, -h], dtype=torch.int64, device=comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t[0]) == h and int(-t[1]) == h


def broadcast_tensor(t: Tensor, src: int = 0) -> Tensor:
    """Return rank ``src``'s copy of ``t`` (same shape and dtype on every rank) on the CPU."""
    buf = t.to(comm_device()).clone()
    dist.broadcast(buf, src=src)
    return buf.cpu()


def gather_vals(
    local: Mapping[int, Tensor], paths: Sequence[int], shape: tuple[int, ...]
) -> dict[int, Tensor]:
    """Give every rank the values of every path in ``paths``.

    Args:
        local: this rank's values, ``path -> shape`` tensors (each path on exactly one rank).
        paths: all paths of the range.
        shape: the shape of one path's values, ``(n_groups, nθ)``.

    Returns:
        ``path -> (n_groups, nθ)`` float32 CPU tensors for every path.

    Raises:
        RuntimeError: if a path was provided by no rank or by several.
    """
    dev = comm_device()
    table = torch.zeros(len(paths), *shape, dtype=torch.float64, device=dev)
    count = torch.zeros(len(paths), dtype=torch.int64, device=dev)
    for i, p in enumerate(paths):
        if p in local:
            table[i] = local[p].to(dev, torch.float64)
            count[i] = 1
    dist.all_reduce(table)
    dist.all_reduce(count)
    bad = [p for p, c in zip(paths, count.tolist(), strict=True) if c != 1]
    if bad:
        raise RuntimeError(f"paths {bad} were computed by {count.tolist()} ranks, expected 1")
    table = table.float().cpu()
    return {p: table[i] for i, p in enumerate(paths)}
