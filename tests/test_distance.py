"""path_distance: the formula, and the properties of a distance between coefficient arrays."""

from __future__ import annotations

import math

import pytest
import torch

from scrapl import path_distance

F64 = torch.float64


def _coeffs(seed, shape=(3, 4, 5)):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.5, math.inf])
@pytest.mark.parametrize("log1p_eps", [None, 1e-3, 0.5])
def test_equals_the_batch_mean_of_p_norms(p, log1p_eps):
    a, b = _coeffs(0), _coeffs(1)
    rho = (lambda s: torch.log1p(s / log1p_eps)) if log1p_eps is not None else (lambda s: s)
    d = (rho(b) - rho(a)).reshape(3, -1)
    expected = d.abs().amax(1).mean() if p == math.inf else (d.abs() ** p).sum(1).pow(1 / p).mean()
    got = path_distance(a, b, p=p, log1p_eps=log1p_eps)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("p", [1.0, 2.0, math.inf])
@pytest.mark.parametrize("log1p_eps", [None, 1e-3])
def test_is_a_metric_on_each_example(p, log1p_eps):
    """Zero on equal inputs, symmetric, and the triangle inequality (for one example)."""
    a, b, c = (_coeffs(s, (1, 4, 5)) for s in range(3))
    kw = dict(p=p, log1p_eps=log1p_eps)
    assert path_distance(a, a.clone(), **kw).item() == 0.0
    torch.testing.assert_close(path_distance(a, b, **kw), path_distance(b, a, **kw), rtol=0, atol=0)
    assert path_distance(a, c, **kw) <= path_distance(a, b, **kw) + path_distance(b, c, **kw) + 1e-12


def test_batch_is_a_mean_over_examples():
    a, b = _coeffs(0, (4, 3, 2)), _coeffs(1, (4, 3, 2))
    per_example = torch.stack([path_distance(a[i : i + 1], b[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(path_distance(a, b), per_example.mean(), rtol=1e-14, atol=0)


def test_p2_gradient_is_the_unit_difference():
    """∂/∂a ‖b − a‖₂ = (a − b)/‖a − b‖ for one example."""
    a, b = _coeffs(0, (1, 3, 4)).requires_grad_(), _coeffs(1, (1, 3, 4))
    (g,) = torch.autograd.grad(path_distance(a, b), a)
    diff = (a - b).detach()
    torch.testing.assert_close(g, diff / diff.norm(), rtol=1e-12, atol=0)
