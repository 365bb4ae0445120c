"""Probability files both ways with scrapl-loss 0.1.0: its ``load_probs`` reads the ``probs.pt`` our
warmup writes, and ours reads the one its warmup writes (the paper's experiment code calls
``load_probs``). Our configuration record lives in ``meta.json`` beside the file."""

from __future__ import annotations

import contextlib
import io
import json
import logging

import pytest
import torch
from torch import nn

from scrapl import SCRAPLLoss

CFG = dict(shape=8096, J=3, Q1=1, Q2=1, J_fr=2, Q_fr=1)  # 7 paths
N_THETA = 2


@pytest.fixture(scope="module")
def problem():
    with torch.random.fork_rng():
        torch.manual_seed(42)
        encoder = nn.Sequential(
            nn.Linear(8096, N_THETA), nn.PReLU(), nn.Linear(N_THETA, N_THETA), nn.Sigmoid()
        )
        decoder = nn.Sequential(nn.Linear(N_THETA, N_THETA), nn.PReLU(), nn.Linear(N_THETA, 8096), nn.Tanh())
        batch = torch.rand(4, 1, 8096)
    return {
        "theta_fn": lambda x: encoder(x.squeeze(1)),
        "synth_fn": lambda theta: decoder(theta).unsqueeze(1),
        "theta_fn_kwargs": [{"x": batch}],
        "params": list(encoder.parameters()),
    }


@pytest.fixture(scope="module")
def ours(problem, tmp_path_factory):
    save_dir = tmp_path_factory.mktemp("ours")
    loss = SCRAPLLoss(**CFG, n_theta=N_THETA, min_prob_frac=0.1)
    loss.warmup_lc_hvp(**problem, save_dir=str(save_dir), n_iter=3, progress=False)
    return loss, save_dir


def test_reference_load_probs_reads_our_file(scrapl_ref, ours):
    loss, save_dir = ours
    ref = scrapl_ref.SCRAPLLoss(**CFG, n_theta=N_THETA, min_prob_frac=1e-6)
    ref.load_probs(str(save_dir / "probs.pt"))
    assert ref.probs.dtype == torch.float64 and ref.probs.shape == (7,)
    torch.testing.assert_close(ref.probs, loss.probs, rtol=0, atol=0)


def test_our_metadata_is_in_meta_json(ours):
    loss, save_dir = ours
    meta = json.loads((save_dir / "meta.json").read_text())
    record = meta["probs"]
    assert record["name"] == "probs.pt" and record["config"]["min_prob_frac"] == 0.1
    assert record["config"]["J"] == 3 and record["config"]["n_theta"] == N_THETA
    assert isinstance(torch.load(save_dir / "probs.pt", weights_only=True), torch.Tensor)


def test_we_read_the_reference_file(scrapl_ref, problem, tmp_path):
    ref = scrapl_ref.SCRAPLLoss(**CFG, n_theta=N_THETA)
    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):  # its power iteration prints a progress bar
        ref.warmup_lc_hvp(**problem, save_dir=str(tmp_path), n_iter=2)
    loss = SCRAPLLoss(**CFG, n_theta=N_THETA, probs_path=str(tmp_path / "probs.pt"))
    torch.testing.assert_close(loss.probs, ref.probs, rtol=0, atol=0)
    assert loss.loaded_probs_path == str(tmp_path / "probs.pt")


def test_our_file_checks_its_configuration(ours):
    """The record in meta.json: a loss with another distance (p=1) refuses the file."""
    _, save_dir = ours
    with pytest.raises(
        ValueError, match=r"^probs_path '.*probs.pt' was computed for another configuration:\n  p: file"
    ):
        SCRAPLLoss(**CFG, n_theta=N_THETA, p=1.0, probs_path=str(save_dir / "probs.pt"))


def test_a_changed_file_is_read_without_its_record(ours, tmp_path):
    """meta.json describes probs.pt by its sha256: a file written over (here: uniform) is read as
    a foreign file, without the configuration check."""
    _, save_dir = ours
    for name in ("meta.json", "probs.pt"):
        (tmp_path / name).write_bytes((save_dir / name).read_bytes())
    torch.save(torch.full((7,), 1 / 7, dtype=torch.float64), tmp_path / "probs.pt")
    other = SCRAPLLoss(shape=8096, J=4, Q1=1, Q2=1, J_fr=2, Q_fr=1)
    assert other.n_paths != 7
    with pytest.raises(
        ValueError, match=r"^probs_path '.*probs.pt': the file must hold probabilities of shape"
    ):
        other.load_probs(tmp_path / "probs.pt")
    same = SCRAPLLoss(**CFG, n_theta=N_THETA, probs_path=str(tmp_path / "probs.pt"))
    torch.testing.assert_close(same.probs, torch.full((7,), 1 / 7, dtype=torch.float64), rtol=0, atol=0)


def test_files_of_the_previous_format_still_load(tmp_path, caplog):
    """probs.pt as this library wrote it before (a dict with its configuration)."""
    probs = torch.tensor([0.1, 0.2, 0.1, 0.2, 0.1, 0.2, 0.1], dtype=torch.float64)
    old = {"format": "scrapl-warmup-probs", "version": 1, "probs": probs, "config": {"J": 3, "n_paths": 7}}
    torch.save(old, tmp_path / "probs.pt")
    with caplog.at_level(logging.INFO, logger="scrapl"):
        loss = SCRAPLLoss(**CFG, probs_path=str(tmp_path / "probs.pt"))
    torch.testing.assert_close(loss.probs, probs, rtol=0, atol=0)
    old["config"]["J"] = 5
    torch.save(old, tmp_path / "probs.pt")
    with pytest.raises(ValueError, match="J: file has 5, this loss has 3"):
        SCRAPLLoss(**CFG, probs_path=str(tmp_path / "probs.pt"))


@pytest.mark.parametrize(
    "content, match",
    [
        (None, "the file does not exist"),
        (b"garbage", "cannot load probs from the file"),
        ({"some": "dict"}, "the file is not a scrapl warmup probs file"),
    ],
)
def test_errors_name_probs_path_and_the_file(tmp_path, content, match):
    path = tmp_path / "p.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(ValueError, match=rf"^probs_path '{path}': {match}"):
        SCRAPLLoss(**CFG, probs_path=str(path))
