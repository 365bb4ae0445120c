"""Non-finite curvature: the iteration stops at the first NaN/inf product, the error names the path
and the θ index, nothing is written for that path, and a fixed run resumes."""

from __future__ import annotations

import math

import pytest
import torch
from test_warmup_toy import make_toy

from scrapl.warmup import (
    NonFiniteCurvatureError,
    NonFiniteProductError,
    dense_matvec,
    power_iteration,
)
from scrapl.warmup.arnoldi import arnoldi_iteration
from scrapl.warmup.files import existing_val_paths

F64 = torch.float64


def _poisoned(matrices, *, row, at_step, value):
    """A dense matvec whose product for operator ``row`` becomes ``value`` at call ``at_step``."""
    inner = dense_matvec(matrices)
    calls = []

    def matvec(vectors, index):
        calls.append(index.tolist())
        out = inner(vectors, index)
        if len(calls) >= at_step and row in index.tolist():
            out[index.tolist().index(row), 0] = value
        return out

    return matvec, calls


@pytest.mark.parametrize("solve", [power_iteration, arnoldi_iteration], ids=["power", "arnoldi"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_iteration_stops_at_the_first_non_finite_product(solve, value):
    gen = torch.Generator().manual_seed(0)
    A = torch.randn(3, 6, 6, generator=gen, dtype=F64)
    matvec, calls = _poisoned(A, row=1, at_step=3, value=value)
    with pytest.raises(NonFiniteProductError) as info:
        solve(matvec, torch.randn(3, 6, generator=gen, dtype=F64), n_iter=50, tol=0.0)
    assert (info.value.operator, info.value.step) == (1, 3)
    assert len(calls) == 3  # no product after the non-finite one


def _nan_on(toy, path):
    """The toy's path loss, NaN on ``path`` (as a synth that returns NaN there would make it)."""
    original = toy.path_loss

    def path_loss(x_hat, x, p):
        loss = original(x_hat, x, p)
        return loss * math.nan if p == path else loss

    return path_loss


@pytest.mark.parametrize("method", ["power", "arnoldi"])
def test_warmup_names_the_path_and_writes_nothing_for_it(tmp_path, method):
    toy = make_toy()
    toy.path_loss = _nan_on(toy, 2)
    with pytest.raises(NonFiniteCurvatureError, match=r"path 2, theta index 0") as info:
        toy.warmup(save_dir=tmp_path, method=method)
    assert (info.value.path_idx, info.value.theta_idx) == (2, 0)
    assert existing_val_paths(tmp_path) == [0, 1]  # computed before; nothing for path 2
    assert not (tmp_path / "probs.pt").exists()


def test_a_fixed_run_resumes_where_it_failed(tmp_path):
    toy = make_toy()
    original = toy.path_loss
    toy.path_loss = _nan_on(toy, 1)
    with pytest.raises(NonFiniteCurvatureError):
        toy.warmup(save_dir=tmp_path)
    toy.path_loss = original
    resumed = toy.warmup(save_dir=tmp_path)
    assert resumed.computed == [1, 2, 3]
    fresh = make_toy().warmup()
    assert torch.equal(resumed.probs, fresh.probs)


def test_infinite_value_is_refused_before_saving(tmp_path, monkeypatch):
    """A finite product whose eigenvalue estimate overflows (float32) is caught by the check
    before the file is written."""
    import scrapl.warmup.driver as driver

    real = driver.path_curvatures

    def overflowing(*args, **kw):
        vals, results = real(*args, **kw)
        if kw["path_idx"] == 3:
            vals = vals.clone()
            vals[0, 2] = math.inf
        return vals, results

    monkeypatch.setattr(driver, "path_curvatures", overflowing)
    with pytest.raises(NonFiniteCurvatureError, match=r"path 3, theta index 2"):
        make_toy().warmup(save_dir=tmp_path)
    assert existing_val_paths(tmp_path) == [0, 1, 2]
