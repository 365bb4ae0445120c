"""The explicit API under DistributedDataParallel sees the rank-averaged gradients (2 gloo ranks)."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from scrapl.optim import PathwiseOptimizer

N_PATHS = 4
PATHS = [1, 3, 1, 0, 2, 3]
WORLD = 2


def _model() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 2))


def _data(rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(10 + rank)
    return torch.randn(5, 6, generator=gen), torch.randn(N_PATHS, 5, 2, generator=gen)


def _path_loss(model: nn.Module, rank: int, path: int) -> torch.Tensor:
    x, y = _data(rank)
    return ((model(x) - y[path]) ** 2).mean()


def _train(model: nn.Module, loss_fn) -> None:
    opt = PathwiseOptimizer(model.parameters(), N_PATHS, grad_mult=1e3)
    sgd = torch.optim.SGD(model.parameters(), lr=0.05)
    for path in PATHS:
        sgd.zero_grad()
        loss_fn(path).backward()
        opt.step(path)  # after DDP's all-reduce: the averaged gradient
        sgd.step()


def _worker(rank: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{out}/store", rank=rank, world_size=WORLD)
    try:
        model = _model()
        ddp = nn.parallel.DistributedDataParallel(model)
        _train(model, lambda path: _path_loss(ddp, rank, path))
        torch.save([p.detach() for p in model.parameters()], f"{out}/rank{rank}.pt")
        dist.barrier()  # tear down together: gloo aborts if a peer leaves mid-operation
    finally:
        dist.destroy_process_group()


def test_explicit_step_after_ddp_allreduce_equals_single_process_on_mean_gradient(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path),), nprocs=WORLD, join=True)
    single = _model()
    _train(single, lambda path: sum(_path_loss(single, r, path) for r in range(WORLD)) / WORLD)
    for rank in range(WORLD):
        params = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        for p, q in zip(params, single.parameters(), strict=True):
            torch.testing.assert_close(p, q.detach(), rtol=1e-5, atol=1e-6)
