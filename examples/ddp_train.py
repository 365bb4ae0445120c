"""SCRAPL under DistributedDataParallel, launched with torchrun.

    torchrun --standalone --nproc_per_node=2 examples/ddp_train.py --steps 20 --out ddp_out

What each rank does:

1. θ-IS warmup, sharded: ``warmup_lc_hvp`` sees the initialised process group, deals the paths
   round-robin over the ranks and gathers the values, so every rank ends with the same
   probabilities (and the per-path files land in one shared ``save_dir``).
2. Training: unseeded draws are made on rank 0 and broadcast (``sync_paths=True``, the default), so
   every rank trains on the same path; P-Adam/P-SAGA run through the explicit optimizer
   (``make_optimizer``) *after* DDP has averaged the gradients, so N ranks with batch b train like
   one process with batch N·b. (``attach_params`` would transform each rank's local gradient
   before the average: avoid it under DDP.)
3. Rank 0 writes an atomic checkpoint (model, loss, path-wise optimizer, RNG) that resumes on any
   number of ranks.

The encoder here is a toy (it maps a random code to θ, the synth maps θ to a sound); what matters
is the plumbing. At the end each rank prints its report as one JSON line and also writes it to
``{out}/report_rank{rank}.json`` (the lines of two ranks sharing a terminal or pipe can interleave).
"""

from __future__ import annotations

import argparse
import json
import os

import torch
import torch.distributed as dist
from torch import nn

from scrapl import SCRAPLLoss
from scrapl._io import atomic_write_text
from scrapl.warmup import atomic_save

N, N_THETA, BATCH = 4096, 2, 8
CONFIG = dict(shape=N, J=6, Q1=2, Q2=1, J_fr=2, Q_fr=1)


def build(seed: int = 0) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    encoder = nn.Sequential(nn.Linear(N, 16), nn.Tanh(), nn.Linear(16, N_THETA), nn.Sigmoid())
    synth = nn.Sequential(nn.Linear(N_THETA, 32), nn.Tanh(), nn.Linear(32, N))
    for p in synth.parameters():
        p.requires_grad_(False)  # a fixed "synthesizer"
    return encoder, synth


def batch(step: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(10_000 + step)
    return torch.randn(BATCH, 1, N, generator=g)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", default="ddp_out")
    args = parser.parse_args()

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    device = (
        torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if backend == "nccl"
        else torch.device("cpu")
    )
    torch.set_num_threads(1)
    encoder, synth = build()
    encoder, synth = encoder.to(device), synth.to(device)
    loss_fn = SCRAPLLoss(**CONFIG, n_theta=N_THETA).to(device)

    def theta_fn(x):
        return encoder(x.squeeze(1))

    def synth_fn(theta):
        return synth(theta).unsqueeze(1)

    # 1. sharded warmup: every rank computes its share of the paths, all get the same probs
    warm = [{"x": batch(-1).to(device)}]
    loss_fn.warmup_lc_hvp(
        theta_fn,
        synth_fn,
        warm,
        list(encoder.parameters()),
        n_iter=10,
        save_dir=os.path.join(args.out, "warmup"),
        progress=rank == 0,
    )

    # 2. DDP training with the explicit path-wise optimizer on the averaged gradients
    model = nn.parallel.DistributedDataParallel(encoder)
    pathwise = loss_fn.make_optimizer(model.parameters())
    sgd = torch.optim.SGD(model.parameters(), lr=1e-3)
    per = BATCH // world
    paths = []
    for step in range(args.steps):
        x = batch(step)[rank * per : (rank + 1) * per].to(device)
        sgd.zero_grad()
        loss = loss_fn(synth_fn(model(x.squeeze(1))), x)  # same path on every rank
        loss.backward()  # DDP averages the gradients here
        pathwise.step(loss_fn.curr_path_idx)  # P-Adam + P-SAGA on the average
        sgd.step()
        paths.append(loss_fn.curr_path_idx)

    # 3. rank 0 checkpoints atomically
    if rank == 0:
        atomic_save(
            {
                "model": model.module.state_dict(),
                "loss": loss_fn.state_dict(),
                "pathwise": pathwise.state_dict(),
                "step": args.steps - 1,
            },
            os.path.join(args.out, "checkpoint.pt"),
        )
    dist.barrier()
    flat = torch.cat([p.detach().reshape(-1) for p in model.module.parameters()])
    report = json.dumps(
        {
            "rank": rank,
            "world": world,
            "paths": paths,
            "probs": [round(p, 12) for p in loss_fn.probs.tolist()],
            "param_checksum": float(flat.double().sum()),
        }
    )
    atomic_write_text(report, os.path.join(args.out, f"report_rank{rank}.json"))
    print(report, flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
