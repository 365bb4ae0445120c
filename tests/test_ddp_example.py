"""The README's torchrun example (examples/ddp_train.py) with 2 gloo processes on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

import ddp_train  # noqa: E402

from scrapl import SCRAPLLoss  # noqa: E402


def test_torchrun_two_ranks(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(ROOT / "examples" / "ddp_train.py"),
        "--steps",
        "4",
        "--out",
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the ranks' reports, from their files: their stdout lines may interleave in the shared pipe
    reports = [json.loads((tmp_path / f"report_rank{r}.json").read_text()) for r in range(2)]
    assert [r["rank"] for r in reports] == [0, 1]
    r0, r1 = reports
    # the same path at every step, the same probabilities, the same parameters on both ranks
    assert r0["paths"] == r1["paths"] and len(r0["paths"]) == 4
    assert r0["probs"] == r1["probs"]
    assert r0["param_checksum"] == r1["param_checksum"]
    # the sharded warmup's directory is complete and gives the same probabilities in one process
    loss = SCRAPLLoss(**ddp_train.CONFIG, n_theta=ddp_train.N_THETA)
    assert loss.load_probs_from_warmup_dir(tmp_path / "warmup") == list(range(loss.n_paths))
    torch.testing.assert_close(loss.probs, torch.tensor(r0["probs"], dtype=torch.float64), rtol=0, atol=1e-11)
    # and a single-process warmup on the same models and data gives the same values
    encoder, synth = ddp_train.build()
    single = SCRAPLLoss(**ddp_train.CONFIG, n_theta=ddp_train.N_THETA)
    single.warmup_lc_hvp(
        lambda x: encoder(x.squeeze(1)),
        lambda th: synth(th).unsqueeze(1),
        [{"x": ddp_train.batch(-1)}],
        list(encoder.parameters()),
        n_iter=10,
        save_dir=None,
        progress=False,
    )
    torch.testing.assert_close(single.probs, loss.probs, rtol=0, atol=1e-6)
    # rank 0's checkpoint loads with torch.load's safe default
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 3 and ckpt["loss"]["_extra_state"]["scrapl_t"] == 4
