"""The seed README's examples run unchanged and print what the README shows (up to random values)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

# the README's console output; <R> marks a random value
EXPECTED_STDOUT = [
    r"SCRAPL loss: <R>",
    r"Number of scattering paths: 315",
    r"Uniform path sampling probability: 0.003175",
    r"Most recently sampled path index \(prev. example\): (?P<first>\d+)",
    r"Most recently sampled path index \(specific\): 8",
    r"Most recently sampled path index \(random seed\): 211",
    r"Path sampling statistics \(original\): defaultdict\(<class 'int'>, \{(?P=first): 1, 8: 1, 211: 1\}\)",
    r"Path sampling statistics \(cleared\): defaultdict\(<class 'int'>, \{\}\)",
    r"Path sampling statistics \(loaded\): defaultdict\(<class 'int'>, \{(?P=first): 1, 8: 1, 211: 1\}\)",
    r"Uniform path sampling probability: 0.142857",
    r"\[min, max\] path sampling probabilities \(before warmup\): \[0.142857, 0.142857\]",
    r"\[min, max\] path sampling probabilities \(after warmup\): \[(?P<lo>0\.1\d{5}), (?P<hi>0\.1\d{5})\]",
]
EXPECTED_LOG_LINES = [
    "INFO:scrapl.scrapl_loss:SCRAPLLoss:",
    "J=12, Q1=8, Q2=2, Jfr=3, Qfr=2, T=None, F=None",
    "number of SCRAPL paths = 315",
    "unif_prob              = 0.00317460",
    "INFO:scrapl.scrapl_loss:Attached 5 parameter tensors (816009 weights)",
    "INFO:scrapl.scrapl_loss:Detached 5 parameter tensors",
    "J=3, Q1=1, Q2=1, Jfr=2, Qfr=1, T=None, F=None",
    "n_theta                = 3",
    "INFO:scrapl.scrapl_loss:Starting warmup_lc_hvp with agg = none for 5 parameter(s) and 1 "
    "batch(es), 20 iter (multibatch = False)",
    "INFO:scrapl.scrapl_loss:Saving warmup SCRAPL sampling probabilities to ",
    "INFO:scrapl.scrapl_loss:Loading probs from directory:",
]


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("seed")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "2"}
    env.pop("LOGLEVEL", None)
    env.pop("SCRAPL_LOGLEVEL", None)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "seed_readme.py")],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cwd, proc


def test_stdout_matches_the_readme(seed_run):
    _, proc = seed_run
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == len(EXPECTED_STDOUT)
    pattern = "\n".join(EXPECTED_STDOUT).replace("<R>", r"-?\d+\.\d+(e-?\d+)?")
    match = re.fullmatch(pattern, "\n".join(lines))
    assert match is not None, proc.stdout
    # the README's reference run gives [0.123653, 0.162354]: the same models and data here
    assert float(match["lo"]) == pytest.approx(0.123653, abs=1e-3)
    assert float(match["hi"]) == pytest.approx(0.162354, abs=1e-3)


def test_log_lines_match_the_readme(seed_run):
    _, proc = seed_run
    for line in EXPECTED_LOG_LINES:
        assert line in proc.stderr
    vals = re.findall(r"path_idx = (\d), curr_vals = tensor\(\[([\d., ]+)\]\)", proc.stderr)
    assert [int(p) for p, _ in vals] == list(range(7))


def test_files_written_and_reload_identical(seed_run):
    cwd, proc = seed_run
    names = sorted(p.name for p in (cwd / "scrapl_warmup").iterdir())
    assert names == ["meta.json", "probs.pt"] + [f"vals_{p}.pt" for p in range(7)]
    saved = torch.load(cwd / "scrapl_warmup" / "probs.pt", weights_only=True)  # (P,), the seed's format
    assert saved.shape == (7,) and saved.dtype == torch.float64
    loaded = re.search(r"min prob = (\S+), max prob = (\S+)", proc.stderr)
    assert loaded is not None
    assert (float(loaded[1]), float(loaded[2])) == (
        round(saved.min().item(), 6),
        round(saved.max().item(), 6),
    )
