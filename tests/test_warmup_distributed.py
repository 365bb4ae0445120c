"""Sharded warmup under torch.distributed: 2 gloo processes on the CPU equal one process."""

from __future__ import annotations

import datetime
import os
import traceback

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from test_warmup_toy import make_toy

from scrapl.warmup import load_probs_file
from scrapl.warmup.distributed import shard_paths

WORLD = 2
N_PATHS = 5


def _run(toy, save_dir, **kwargs):
    return toy.warmup(save_dir=save_dir, n_iter=6, **kwargs)


def _outcome(fn):
    try:
        fn()
        return "ok"
    except Exception as err:  # noqa: BLE001 - reported to the parent process
        return f"{type(err).__name__}: {err}"


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=WORLD,
        timeout=datetime.timedelta(seconds=60),
    )
    report = {}
    try:
        toy = make_toy(n_paths=N_PATHS)
        for init in ("seeded", "reference"):
            torch.manual_seed(123 if rank == 0 else 999)  # reference mode uses rank 0's stream
            res = _run(toy, os.path.join(out_dir, f"w_{init}"), init=init)
            report[init] = {
                "vals": res.vals,
                "probs": res.probs,
                "computed": res.computed,
                "rng": torch.get_rng_state(),
            }
        # different data on the ranks: refused on every rank, nobody hangs
        other = make_toy(n_paths=N_PATHS, seed=rank)
        report["mismatch"] = _outcome(lambda: _run(other, None))
        # a bad argument on rank 1 only: rank 1 gets its error, rank 0 is told, nobody hangs
        bad = make_toy(n_paths=N_PATHS)
        if rank == 1:
            bad.params[0].grad = torch.zeros_like(bad.params[0])
        report["one_rank_fails"] = _outcome(lambda: _run(bad, None))
    except Exception:  # noqa: BLE001
        report["crash"] = traceback.format_exc()
    finally:
        torch.save(report, os.path.join(out_dir, f"rank{rank}.pt"))
        dist.destroy_process_group()


def test_two_gloo_ranks_equal_one_process(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    reports = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    for r in reports:
        assert "crash" not in r, r.get("crash")
    toy = make_toy(n_paths=N_PATHS)
    for init in ("seeded", "reference"):
        torch.manual_seed(123)
        single = _run(toy, tmp_path / f"single_{init}", init=init)
        single_rng = torch.get_rng_state()
        computed = []
        for rank, rep in enumerate(reports):
            got = rep[init]
            assert got["computed"] == shard_paths(range(N_PATHS), rank, WORLD)
            computed += got["computed"]
            for p in range(N_PATHS):  # every rank holds every value, equal to one process
                assert torch.equal(got["vals"][p], single.vals[p]), (init, rank, p)
            assert torch.equal(got["probs"], single.probs)
            if init == "reference":
                assert torch.equal(got["rng"], single_rng)
        assert sorted(computed) == list(range(N_PATHS))
        on_disk = load_probs_file(tmp_path / f"w_{init}" / "probs.pt", n_paths=N_PATHS)
        assert torch.equal(on_disk.probs, single.probs)
        assert sorted(os.listdir(tmp_path / f"w_{init}")) == sorted(
            ["meta.json", "probs.pt", *[f"vals_{p}.pt" for p in range(N_PATHS)]]
        )
    for r in reports:
        assert r["mismatch"].startswith("ValueError: ranks disagree")
    assert reports[1]["one_rank_fails"].startswith("ValueError: params[0] already has")
    assert reports[0]["one_rank_fails"].startswith("RuntimeError: warmup aborted")
