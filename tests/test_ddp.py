"""SCRAPL under DistributedDataParallel (2 gloo processes on CPU).

With ``make_optimizer`` applied after DDP has averaged the gradients, N ranks with batch b train
exactly like one process with batch N b: every rank draws rank 0's path, the loss is a batch mean,
and P-Adam/P-SAGA see the averaged gradient. A checkpoint saved on rank 0 resumes in one process.
"""

from __future__ import annotations

import os
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from scrapl import SCRAPLLoss

A = dict(shape=8096, J=3, Q1=1, Q2=1, J_fr=2, Q_fr=1)
STEPS, SAVE_AT, BATCH = 5, 3, 4


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 8), nn.Tanh(), nn.Linear(8, A["shape"]))


def _batch(step):
    g = torch.Generator().manual_seed(1000 + step)
    return torch.randn(BATCH, 1, 64, generator=g), torch.randn(BATCH, 1, A["shape"], generator=g)


def _run(model, loss_fn, opt, sgd, steps, shard=None, on_step=None):
    for step in steps:
        z, target = _batch(step)
        if shard is not None:
            z, target = z[shard], target[shard]
        sgd.zero_grad()
        loss_fn(model(z), target).backward()
        opt.step(loss_fn.curr_path_idx)
        sgd.step()
        if on_step is not None:
            on_step(step)


def _single(steps, state=None):
    model = _model()
    loss_fn = SCRAPLLoss(**A)
    opt = loss_fn.make_optimizer(model.parameters())
    sgd = torch.optim.SGD(model.parameters(), lr=1e-3)
    start = 0
    torch.manual_seed(123)
    if state is not None:
        model.load_state_dict(state["model"])
        loss_fn.load_state_dict(state["loss"])
        opt.load_state_dict(state["opt"])
        torch.set_rng_state(state["rng"])
        start = state["step"] + 1
    _run(model, loss_fn, opt, sgd, range(start, steps))
    return model, loss_fn


def _worker(rank, world, tmp):
    dist.init_process_group("gloo", init_method=f"file://{tmp}/store", rank=rank, world_size=world)
    try:
        model = nn.parallel.DistributedDataParallel(_model())
        loss_fn = SCRAPLLoss(**A)
        opt = loss_fn.make_optimizer(model.parameters())
        sgd = torch.optim.SGD(model.parameters(), lr=1e-3)
        torch.manual_seed(123 if rank == 0 else 999)  # only rank 0's RNG draws the paths
        per = BATCH // world
        paths = []

        def on_step(step):
            paths.append(loss_fn.curr_path_idx)
            if step == SAVE_AT and rank == 0:
                torch.save(
                    {
                        "model": model.module.state_dict(),
                        "loss": loss_fn.state_dict(),
                        "opt": opt.state_dict(),
                        "rng": torch.get_rng_state(),
                        "step": step,
                    },
                    f"{tmp}/ckpt.pt",
                )

        _run(
            model, loss_fn, opt, sgd, range(STEPS), shard=slice(rank * per, (rank + 1) * per), on_step=on_step
        )
        torch.save(
            {"params": [p.detach() for p in model.module.parameters()], "paths": paths},
            f"{tmp}/rank{rank}.pt",
        )
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_two_ranks_equal_one_process_with_the_whole_batch():
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        mp.spawn(_worker, args=(2, tmp), nprocs=2, join=True)
        r0, r1 = torch.load(f"{tmp}/rank0.pt"), torch.load(f"{tmp}/rank1.pt")
        ckpt = torch.load(f"{tmp}/ckpt.pt")
    assert r0["paths"] == r1["paths"]  # every rank trained on rank 0's draw
    model, loss_fn = _single(STEPS)
    for p_single, p0, p1 in zip(model.parameters(), r0["params"], r1["params"], strict=True):
        torch.testing.assert_close(p0, p1, rtol=0, atol=0)
        torch.testing.assert_close(p0, p_single.detach(), rtol=1e-5, atol=1e-5)
    # the rank-0 checkpoint resumes in a single process and ends where the straight run ends
    resumed, _ = _single(STEPS, state=ckpt)
    for a, b in zip(resumed.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
