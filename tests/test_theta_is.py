"""θ-IS on SCRAPLLoss: the seed's warmup example, probability files, and the state around them.

The seed's example (N=8096, J=3, Q1=1, Q2=1, J_fr=2, Q_fr=1, nθ=3, P=7, torch.manual_seed(42)) is
run through ``SCRAPLLoss.warmup_lc_hvp``; its probabilities are compared with those scrapl-loss
0.1.0 produced on the same models and data (``scrapl-algorithms.md`` §10, recorded by running
the reference: its full warmup takes minutes, the parity of the values path by path is in
``tests/parity/test_warmup_parity.py``).
"""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from scrapl import SCRAPLLoss
from scrapl.warmup import save_probs_file

N_SAMPLES, N_THETA = 8096, 3
SEED_CFG = dict(shape=N_SAMPLES, J=3, Q1=1, Q2=1, J_fr=2, Q_fr=1)
# scrapl-loss 0.1.0's probabilities after the seed's warmup (scrapl-algorithms.md §10)
REFERENCE_PROBS = torch.tensor(
    [0.16235346, 0.14924328, 0.12660351, 0.14578119, 0.14998550, 0.12365297, 0.14238009], dtype=torch.float64
)


def seed_models():
    """The seed README's encoder, decoder and warmup batch, drawn as it draws them."""
    torch.manual_seed(42)
    encoder = nn.Sequential(
        nn.Linear(N_SAMPLES, N_THETA), nn.PReLU(), nn.Linear(N_THETA, N_THETA), nn.Sigmoid()
    )
    decoder = nn.Sequential(nn.Linear(N_THETA, N_THETA), nn.PReLU(), nn.Linear(N_THETA, N_SAMPLES), nn.Tanh())
    batch = torch.rand((4, 1, N_SAMPLES))
    return {
        "theta_fn": lambda x: encoder(x.squeeze(1)),
        "synth_fn": lambda theta: decoder(theta).unsqueeze(1),
        "theta_fn_kwargs": [{"x": batch}],
        "params": list(encoder.parameters()),
    }


@pytest.fixture(scope="module")
def seed_warmup(tmp_path_factory):
    """The seed's warmup run once (default settings but n_iter), with its loss and directory."""
    ex = seed_models()
    loss = SCRAPLLoss(**SEED_CFG, n_theta=N_THETA)
    save_dir = tmp_path_factory.mktemp("warmup") / "scrapl_warmup"
    result = loss.warmup_lc_hvp(**ex, save_dir=str(save_dir), n_iter=40, progress=False)
    return loss, save_dir, result


def test_seed_warmup_probs_match_reference(seed_warmup):
    """Same models and data as the reference: probabilities within 1e-3 of its run."""
    loss, _, _ = seed_warmup
    torch.testing.assert_close(loss.probs, REFERENCE_PROBS, rtol=0, atol=1e-3)
    assert loss.probs.min() < loss.unif_prob < loss.probs.max()


def test_seed_warmup_writes_its_files(seed_warmup):
    _, save_dir, result = seed_warmup
    names = sorted(p.name for p in save_dir.iterdir())
    assert names == ["meta.json", "probs.pt"] + [f"vals_{p}.pt" for p in range(7)]
    for p in range(7):
        vals = torch.load(save_dir / f"vals_{p}.pt", weights_only=True)
        assert vals.shape == (1, N_THETA) and vals.dtype == torch.float32
        torch.testing.assert_close(vals, result.vals[p], rtol=0, atol=0)


def test_reload_from_dir_and_probs_file_is_identical(seed_warmup):
    loss, save_dir, _ = seed_warmup
    fresh = SCRAPLLoss(**SEED_CFG, n_theta=N_THETA)
    assert fresh.load_probs_from_warmup_dir(str(save_dir)) == list(range(7))
    assert torch.equal(fresh.probs, loss.probs)
    from_file = SCRAPLLoss(**SEED_CFG, n_theta=N_THETA, probs_path=str(save_dir / "probs.pt"))
    assert torch.equal(from_file.probs, loss.probs)
    assert from_file.loaded_probs_path == str(save_dir / "probs.pt")


def test_warmup_is_not_training(seed_warmup):
    """Warmup forwards count no visit and no step (the reference counts them, quirk Q8)."""
    loss, _, _ = seed_warmup
    assert dict(loss.path_counts) == {} and loss.scrapl_t == 0


def test_rerun_skips_finished_paths(seed_warmup, tmp_path):
    """The same directory again: nothing recomputed, the same probabilities."""
    loss, save_dir, _ = seed_warmup
    again = SCRAPLLoss(**SEED_CFG, n_theta=N_THETA)
    result = again.warmup_lc_hvp(**seed_models(), save_dir=str(save_dir), n_iter=40, progress=False)
    assert result.computed == []
    assert torch.equal(again.probs, loss.probs)


def test_other_configuration_in_same_dir_is_an_error(seed_warmup):
    _, save_dir, _ = seed_warmup
    other = SCRAPLLoss(**SEED_CFG, n_theta=N_THETA, use_rho_log1p=True)
    with pytest.raises(ValueError, match="use_rho_log1p"):
        other.warmup_lc_hvp(**seed_models(), save_dir=str(save_dir), n_iter=40, progress=False)
    with pytest.raises(ValueError, match="use_rho_log1p"):
        other.load_probs_from_warmup_dir(str(save_dir))


def test_state_dict_carries_theta_is_state(seed_warmup):
    loss, _, _ = seed_warmup
    sd = loss.state_dict()
    fresh = SCRAPLLoss(**SEED_CFG, n_theta=N_THETA)
    fresh.load_state_dict(sd)
    assert torch.equal(fresh.probs, loss.probs)
    assert torch.equal(fresh.theta_is.state.log_vals, loss.theta_is.state.log_vals)
    fresh.clear()
    assert torch.equal(fresh.probs, torch.full((7,), 1 / 7, dtype=torch.float64))


def test_warmup_refuses_attached_params():
    loss = SCRAPLLoss(**SEED_CFG, n_theta=N_THETA)
    ex = seed_models()
    loss.attach_params(ex["params"])
    with pytest.raises(ValueError, match="attached"):
        loss.warmup_lc_hvp(**ex, save_dir=None, progress=False)


def test_warmup_refuses_params_with_gradients():
    loss = SCRAPLLoss(**SEED_CFG, n_theta=N_THETA)
    ex = seed_models()
    ex["params"][0].grad = torch.zeros_like(ex["params"][0])
    with pytest.raises(ValueError, match=r"params\[0\] already has a gradient"):
        loss.warmup_lc_hvp(**ex, save_dir=None, progress=False)


def test_update_prob_with_min_prob_frac():
    """min_prob_frac = 0.1 works (the reference's check fails above ~1e-5, quirk Q2)."""
    loss = SCRAPLLoss(**SEED_CFG, min_prob_frac=0.1)
    loss.update_prob(0, 2.0)
    loss.update_prob(3, 1)  # an int is accepted (Q22)
    # two of seven paths: their share 2/7 split 2:1, times 0.9, plus the floor 0.1/7
    expected0 = 0.9 * (2 / 7) * (2 / 3) + 0.1 / 7
    assert loss.probs[0].item() == pytest.approx(expected0, rel=1e-9)
    assert loss.probs.sum().item() == pytest.approx(1.0, abs=1e-12)
    assert loss.probs.min().item() >= 0.1 / 7


def test_update_prob_refused_after_loading_a_file(tmp_path):
    path = tmp_path / "p.pt"
    torch.save(torch.full((7,), 1 / 7, dtype=torch.float64), path)  # the reference's format
    loss = SCRAPLLoss(**SEED_CFG, probs_path=str(path))
    with pytest.raises(ValueError, match="clear"):
        loss.update_prob(0, 1.0)
    loss.clear()
    loss.update_prob(0, 1.0)


@pytest.mark.parametrize(
    "probs, match",
    [
        (torch.full((6,), 1 / 6), r"shape \(7,\)"),
        (torch.tensor([0.5, -0.1, 0.2, 0.1, 0.1, 0.1, 0.1]), "negative"),
        (torch.full((7,), 0.2), "sum to 1"),
        ("not a tensor", "probabilities of shape"),
    ],
)
def test_bad_probs_file(tmp_path, probs, match):
    path = tmp_path / "p.pt"
    torch.save(probs, path)
    with pytest.raises(ValueError, match=match):
        SCRAPLLoss(**SEED_CFG, probs_path=str(path))


def test_probs_file_of_another_configuration(tmp_path):
    path = tmp_path / "probs.pt"
    config = {
        "transform": "jtfs",
        "shape": N_SAMPLES,
        "J": 3,
        "Q1": 1,
        "Q2": 1,
        "J_fr": 2,
        "Q_fr": 1,
        "T": 4,
        "F": None,
    }
    save_probs_file(path, torch.full((7,), 1 / 7, dtype=torch.float64), config)
    with pytest.raises(ValueError, match="T: file has 4, this loss has None"):
        SCRAPLLoss(**SEED_CFG, probs_path=str(path))


def test_missing_probs_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        SCRAPLLoss(**SEED_CFG, probs_path=str(tmp_path / "nope.pt"))


def test_incomplete_warmup_dir(seed_warmup, tmp_path, caplog):
    _, save_dir, _ = seed_warmup
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("meta.json", "vals_0.pt", "vals_2.pt", "vals_5.pt"):
        (partial / name).write_bytes((save_dir / name).read_bytes())
    loss = SCRAPLLoss(**SEED_CFG, n_theta=N_THETA)
    with pytest.raises(ValueError, match="no values for 4 of 7 paths: 1, 3-4, 6"):
        loss.load_probs_from_warmup_dir(str(partial))
    with caplog.at_level(logging.WARNING):
        assert loss.load_probs_from_warmup_dir(str(partial), allow_missing=True) == [0, 2, 5]
    assert "path index 1 do not exist" in caplog.text
    assert loss.probs[1].item() == pytest.approx(1 / 7, rel=1e-9)
