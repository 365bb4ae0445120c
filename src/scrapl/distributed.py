"""What changes under ``torch.distributed`` (DDP): every rank must train on the same path.

SCRAPL draws one path per step. Under DistributedDataParallel each rank computes the loss of its own
batch shard, and the gradients are averaged; that average is the gradient of one path's loss on
the whole batch only if every rank used the same path. :func:`broadcast_path` makes rank 0's draw
everyone's (one tiny collective per training step); :class:`~scrapl.SCRAPLLoss` calls it for
unseeded training-mode draws when a process group with more than one rank is initialised.

This module is also the one home of the device choice for collectives (:func:`comm_device`), which
the sharded warmup (:mod:`scrapl.warmup.distributed`) uses too.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["barrier", "broadcast_path", "comm_device", "is_distributed"]


def is_distributed() -> bool:
    """Whether a process group with more than one rank is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def comm_device() -> torch.device:
    """The device collectives of the default group run on (CUDA for NCCL, else CPU)."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    """``dist.barrier()``, on the current CUDA device for NCCL."""
    if dist.get_backend() == "nccl":
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def broadcast_path(path_idx: int, src: int = 0) -> int:
    """Return rank ``src``'s ``path_idx`` on every rank (all ranks must call this together)."""
    t = torch.tensor([path_idx], dtype=torch.int64, device=comm_device())
    dist.broadcast(t, src=src)
    return int(t.item())
