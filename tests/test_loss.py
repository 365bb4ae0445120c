"""SCRAPLLoss: inputs, sampling, counting, distance options, argument validation."""

from __future__ import annotations

import logging

import pytest
import torch

from scrapl import SCRAPLLoss

A = dict(shape=8096, J=3, Q1=1, Q2=1, J_fr=2, Q_fr=1)


@pytest.fixture
def loss_A():
    return SCRAPLLoss(**A)


def _xy(shape=(2, 1, 8096), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)


def test_channels_fold_into_batch(loss_A):
    """(B, C, N) gives the mean of the B*C single-signal losses (jtfs-spec.md §8)."""
    x, y = _xy((3, 2, 8096))
    whole = loss_A(x, y, path_idx=1)
    parts = [
        loss_A(x[b : b + 1, c : c + 1], y[b : b + 1, c : c + 1], path_idx=1)
        for b in range(3)
        for c in range(2)
    ]
    torch.testing.assert_close(whole, torch.stack(parts).mean(), rtol=1e-5, atol=0)


def test_seeded_sampling_is_deterministic_and_leaves_global_rng(loss_A):
    x, y = _xy()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    paths = {loss_A(x, y, seed=42) and loss_A.curr_path_idx for _ in range(3)}
    assert paths == {3}  # P = 7, seed 42 -> 3, as scrapl-loss 0.1.0
    assert torch.equal(torch.get_rng_state(), state)


def test_seed_42_on_seed_config():
    loss = SCRAPLLoss(shape=48000, J=12, Q1=8, Q2=2, J_fr=3, Q_fr=2)
    assert loss.n_paths == 315 and loss.unif_prob == pytest.approx(1 / 315)
    assert loss.sample_path(seed=42) == 211  # the seed README's value


def test_unseeded_sampling_uses_global_rng(loss_A):
    torch.manual_seed(5)
    draws = [loss_A.sample_path() for _ in range(20)]
    torch.manual_seed(5)
    expected = [torch.multinomial(loss_A.probs, 1).item() for _ in range(20)]
    assert draws == expected


def test_training_counts_and_eval_does_not(loss_A):
    x, y = _xy()
    loss_A(x, y, path_idx=2)
    loss_A(x, y, path_idx=2)
    loss_A(x, y, path_idx=5)
    assert dict(loss_A.path_counts) == {2: 2, 5: 1} and loss_A.scrapl_t == 3
    loss_A.eval()
    loss_A(x, y, path_idx=6)
    loss_A(x, y, seed=0)
    assert dict(loss_A.path_counts) == {2: 2, 5: 1} and loss_A.scrapl_t == 3
    assert loss_A.curr_path_idx == loss_A.sample_path(seed=0)


def test_all_paths_first_visits_each_path_once():
    loss = SCRAPLLoss(**A, sample_all_paths_first=True)
    x, y = _xy((1, 1, 8096))
    torch.manual_seed(5)
    seen = []
    for _ in range(7):
        loss(x, y)
        seen.append(loss.curr_path_idx)
    assert sorted(seen) == list(range(7))
    assert seen == [1, 0, 4, 3, 6, 2, 5]  # scrapl-loss 0.1.0's order for global seed 5
    assert loss.unsampled_paths == []


def test_eval_calls_do_not_use_up_the_first_pass():
    loss = SCRAPLLoss(**A, sample_all_paths_first=True).eval()
    x, y = _xy((1, 1, 8096))
    for _ in range(3):
        loss(x, y)
    assert len(loss.unsampled_paths) == 7 and not loss.path_counts


def test_seed_is_ignored_with_path_idx(loss_A, caplog):
    x, y = _xy()
    with caplog.at_level(logging.WARNING, logger="scrapl"):
        loss_A(x, y, path_idx=4, seed=1)
    assert loss_A.curr_path_idx == 4
    assert "seed is ignored when path_idx is specified" in caplog.text


@pytest.mark.parametrize("log1p", [False, True])
@pytest.mark.parametrize("path_idx", [0, 3, 6])
def test_distance_is_symmetric_and_the_target_gradient_is_the_swapped_input_gradient(path_idx, log1p):
    """L(x, y) = L(y, x), so ∂L(x, y)/∂y = ∂L(y, x)/∂y: the target's gradient (computed when the
    target requires grad) equals the input gradient with the arguments swapped, and the input's
    gradient does not change when the target requires grad."""
    loss = SCRAPLLoss(**A, use_rho_log1p=log1p, grad_mult=1.0 if log1p else 1e8)
    x, y = (t.requires_grad_(True) for t in _xy())
    forward = loss(x, y.detach(), path_idx=path_idx)
    (gx_alone,) = torch.autograd.grad(forward, x)
    both = loss(x, y, path_idx=path_idx)
    gx, gy = torch.autograd.grad(both, (x, y))
    swapped = loss(y, x.detach(), path_idx=path_idx)
    (gy_swapped,) = torch.autograd.grad(swapped, y)
    torch.testing.assert_close(both, swapped, rtol=1e-6, atol=0)
    torch.testing.assert_close(gx, gx_alone, rtol=1e-6, atol=1e-12)
    torch.testing.assert_close(gy, gy_swapped, rtol=1e-5, atol=1e-9 * gy_swapped.abs().max().item())


def test_identical_inputs_give_zero(loss_A):
    x, _ = _xy()
    assert loss_A(x, x.clone(), path_idx=0).item() == 0.0


def test_constructor_banner(caplog):
    with caplog.at_level(logging.INFO, logger="scrapl"):
        SCRAPLLoss(**A)
    assert "number of SCRAPL paths = 7" in caplog.text
    assert "unif_prob              = 0.14285714" in caplog.text
    assert "J=3, Q1=1, Q2=1, Jfr=2, Qfr=1, T=None, F=None" in caplog.text


@pytest.mark.parametrize(
    "x,y,exc,match",
    [
        (torch.randn(2, 8096), torch.randn(2, 8096), ValueError, "x must have shape"),
        (torch.randn(2, 1, 8000), torch.randn(2, 1, 8000), ValueError, "x must have 8096 samples"),
        (torch.randn(2, 1, 8096), torch.randn(3, 1, 8096), ValueError, "same shape"),
        (
            torch.ones(2, 1, 8096, dtype=torch.long),
            torch.randn(2, 1, 8096),
            TypeError,
            "x must have a floating",
        ),
        (torch.randn(2, 1, 8096), "target", TypeError, "x_target must be a torch.Tensor"),
    ],
)
def test_bad_inputs(loss_A, x, y, exc, match):
    with pytest.raises(exc, match=match):
        loss_A(x, y)


@pytest.mark.parametrize(
    "path_idx,exc", [(7, ValueError), (-1, ValueError), (1.0, TypeError), ("3", TypeError)]
)
def test_bad_path_idx(loss_A, path_idx, exc):
    x, y = _xy()
    with pytest.raises(exc, match="path_idx"):
        loss_A(x, y, path_idx=path_idx)


def test_bad_seed(loss_A):
    x, y = _xy()
    with pytest.raises(TypeError, match="seed"):
        loss_A(x, y, seed="a")


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(grad_mult=1.0), ValueError, "grad_mult must be > 1"),
        (dict(p=0.5), ValueError, "p must be"),
        (dict(log1p_eps=0.0), ValueError, "log1p_eps"),
        (dict(n_theta=0), ValueError, "n_theta"),
        (dict(min_prob_frac=1.0), ValueError, "min_prob_frac"),
        (dict(min_prob_frac=-0.1), ValueError, "min_prob_frac"),
        (dict(p_adam_b1=1.0), ValueError, "p_adam_b1"),
        (dict(p_adam_b2=-0.1), ValueError, "p_adam_b2"),
        (dict(p_adam_eps=-1.0), ValueError, "p_adam_eps"),
        (dict(eps=0.0), ValueError, "eps"),
        (dict(use_p_adam="yes"), TypeError, "use_p_adam"),
        (dict(compat="kymatio"), ValueError, "compat"),
        (dict(J=-1), ValueError, "J must be"),
    ],
)
def test_invalid_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        SCRAPLLoss(**{**A, **kwargs})


@pytest.mark.parametrize("kwargs", [dict(use_rho_log1p=True), dict(use_p_adam=False)])
def test_grad_mult_one_is_accepted_with_log1p_or_without_adam(kwargs):
    """grad_mult=1 is refused only with P-Adam on a linear distance; otherwise it is kept and the
    optimizer applies no factor (without P-Adam and P-SAGA: the plain gradient)."""
    loss = SCRAPLLoss(**A, grad_mult=1.0, use_p_saga=False, **kwargs)
    assert loss.grad_mult == 1.0
    model = torch.nn.Linear(4, 8096)
    opt = loss.make_optimizer(model.parameters())
    assert opt.config.grad_mult == 1.0
    if not loss.use_p_adam:
        x, y = _xy((1, 1, 8096))
        (expected,) = torch.autograd.grad(loss(model(torch.ones(1, 1, 4)), y, path_idx=2), model.bias)
        loss(model(torch.ones(1, 1, 4)), y, path_idx=2).backward()
        opt.step(2)
        torch.testing.assert_close(model.bias.grad, expected, rtol=0, atol=0)


def test_configuration_without_paths_is_refused():
    with pytest.raises(ValueError, match="no second-order path"):
        SCRAPLLoss(shape=256, J=2, Q1=1, Q2=1, J_fr=1, Q_fr=1)
