"""Every invalid argument of PathwiseOptimizer raises ValueError/TypeError naming it and its value."""

from __future__ import annotations

import re

import pytest
import torch

from scrapl.optim import PathwiseOptimizer

P = torch.nn.Parameter


def _params():
    return [P(torch.zeros(2, 3)), P(torch.zeros(3))]


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        (dict(n_paths=0), ValueError, "n_paths must be >= 1, got 0"),
        (dict(n_paths=-3), ValueError, "n_paths must be >= 1, got -3"),
        (dict(n_paths=2.5), TypeError, "n_paths must be an integer, got 2.5"),
        (dict(n_paths=True), TypeError, "n_paths must be an integer, got True"),
        (dict(grad_mult=0.0), ValueError, "grad_mult must be > 0, got 0.0"),
        (dict(grad_mult=-1e8), ValueError, "grad_mult must be > 0, got -100000000.0"),
        (dict(grad_mult=float("inf")), ValueError, "grad_mult must be finite, got inf"),
        (dict(grad_mult="1e8"), TypeError, "grad_mult must be a real number, got '1e8'"),
        (dict(b1=1.0), ValueError, "b1 must be in [0, 1), got 1.0"),
        (dict(b1=-0.1), ValueError, "b1 must be in [0, 1), got -0.1"),
        (dict(b2=1.5), ValueError, "b2 must be in [0, 1), got 1.5"),
        (dict(b2=None), TypeError, "b2 must be a real number, got None"),
        (dict(eps=-1e-8), ValueError, "eps must be >= 0, got -1e-08"),
        (dict(eps=float("nan")), ValueError, "eps must be finite, got nan"),
        (dict(compat="Paper"), ValueError, "compat must be 'paper' or 'reference', got 'Paper'"),
        (dict(use_p_adam=1), TypeError, "use_p_adam must be a bool, got 1"),
        (dict(use_p_saga="no"), TypeError, "use_p_saga must be a bool, got 'no'"),
        (dict(offload=None), TypeError, "offload must be a bool, got None"),
    ],
)
def test_invalid_hyperparameter(kwargs, exc, message):
    with pytest.raises(exc, match=re.escape(message)):
        PathwiseOptimizer(_params(), **{"n_paths": 3, **kwargs})


def test_hyperparameters_are_keyword_only():
    with pytest.raises(TypeError):
        PathwiseOptimizer(_params(), 3, 1e8)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("params", "exc", "message"),
    [
        (P(torch.zeros(3)), TypeError, "params must be an iterable of tensors, got a single tensor"),
        (5, TypeError, "params must be an iterable of tensors, got 5"),
        ([], ValueError, "params must contain at least one tensor, got an empty iterable"),
        ([P(torch.zeros(2)), 1.0], TypeError, "params[1] must be a torch.Tensor, got float"),
        ([torch.zeros(2, dtype=torch.long)], TypeError,
         "params[0] must have a floating-point dtype, got torch.int64"),
        ([P(torch.zeros(2)) * 2], ValueError, "params[0] must be a leaf tensor"),
    ],
)  # fmt: skip
def test_invalid_params(params, exc, message):
    with pytest.raises(exc, match=re.escape(message)):
        PathwiseOptimizer(params, 3)


def test_duplicate_params():
    p = P(torch.zeros(2))
    with pytest.raises(ValueError, match=re.escape("params[1] appears more than once")):
        PathwiseOptimizer([p, p], 3)


@pytest.mark.parametrize(
    ("args", "compat", "exc", "message"),
    [
        ((2, torch.zeros(3), 0, 1), "paper", ValueError, "param_index must be in [0, 2), got 2"),
        (("0", torch.zeros(3), 0, 1), "paper", TypeError, "param_index must be an integer, got '0'"),
        ((1, [0.0, 0.0, 0.0], 0, 1), "paper", TypeError, "grad must be a torch.Tensor, got list"),
        ((1, torch.zeros(4), 0, 1), "paper", ValueError,
         "grad has shape (4,), expected params[1]'s (3,)"),
        ((1, torch.zeros(3).to_sparse(), 0, 1), "paper", TypeError,
         "grad must be a dense (strided) tensor, got layout torch.sparse_coo"),
        ((1, torch.zeros(3), 3, 1), "paper", ValueError, "path_idx must be in [0, 3), got 3"),
        ((1, torch.zeros(3), -1, 1), "paper", ValueError, "path_idx must be in [0, 3), got -1"),
        ((1, torch.zeros(3), 1.0, 1), "paper", TypeError, "path_idx must be an integer, got 1.0"),
        ((1, torch.zeros(3), 0, 0), "paper", ValueError, "t must be >= 1, got 0"),
        ((1, torch.zeros(3), 0, -1), "reference", ValueError, "t must be >= 0, got -1"),
        ((1, torch.zeros(3), 0, 1, 0), "paper", ValueError, "n_seen must be in [1, 4), got 0"),
        ((1, torch.zeros(3), 0, 1, 4), "paper", ValueError, "n_seen must be in [1, 4), got 4"),
    ],
)  # fmt: skip
def test_invalid_process_grad_arguments(args, compat, exc, message):
    opt = PathwiseOptimizer(_params(), 3, compat=compat)
    with pytest.raises(exc, match=re.escape(message)):
        opt.process_grad(*args)
    assert opt.step_count == 0 and not opt.visited_paths  # nothing changed


def test_reference_mode_accepts_step_zero():
    """scrapl-loss 0.1.0 runs hooks with scrapl_t = 0 after an eval forward: its clock is then 1."""
    opt = PathwiseOptimizer(_params(), 3, compat="reference", grad_mult=1.0)
    out = opt.process_grad(1, torch.tensor([2.0, -1.0, 0.5]), 0, 0)
    torch.testing.assert_close(out, torch.tensor([1.0, -1.0, 1.0]))


@pytest.mark.parametrize(
    ("path_idx", "exc", "message"),
    [(3, ValueError, "path_idx must be in [0, 3), got 3"),
     (None, TypeError, "path_idx must be an integer, got None")],
)  # fmt: skip
def test_invalid_step_arguments(path_idx, exc, message):
    params = _params()
    for p in params:
        p.grad = torch.ones_like(p)
    opt = PathwiseOptimizer(params, 3)
    with pytest.raises(exc, match=re.escape(message)):
        opt.step(path_idx)
    assert all(torch.equal(p.grad, torch.ones_like(p)) for p in params)
