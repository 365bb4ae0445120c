"""scrapl.distributed with 2 gloo processes: broadcast_path and the loss's synchronised draws."""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from scrapl import SCRAPLLoss
from scrapl.distributed import broadcast_path, comm_device, is_distributed

WORLD = 2
A = dict(shape=8096, J=3, Q1=1, Q2=1, J_fr=2, Q_fr=1)


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=WORLD,
        timeout=datetime.timedelta(seconds=60),
    )
    try:
        torch.manual_seed(100 + rank)  # different global RNGs on the ranks
        synced, local = SCRAPLLoss(**A), SCRAPLLoss(**A, sync_paths=False)
        report = {
            "distributed": is_distributed(),
            "device": str(comm_device()),
            "from_0": [broadcast_path(10 * rank + k) for k in range(3)],
            "from_1": broadcast_path(10 * rank + 7, src=1),
            "synced": [synced.sample_path() for _ in range(20)],
            "eval": [synced.eval().sample_path() for _ in range(20)],  # eval draws are local
            "local": [local.sample_path() for _ in range(20)],
        }
        torch.save(report, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_two_ranks(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=WORLD, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD))
    assert r0["distributed"] and r1["distributed"] and r0["device"] == r1["device"] == "cpu"
    assert r0["from_0"] == r1["from_0"] == [0, 1, 2]  # rank 0's values everywhere
    assert r0["from_1"] == r1["from_1"] == 17
    assert r0["synced"] == r1["synced"]  # training draws: rank 0's, broadcast
    assert r0["eval"] != r1["eval"] and r0["local"] != r1["local"]  # not synchronised
    assert not is_distributed()  # nothing initialised in this process
