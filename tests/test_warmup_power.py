"""Power iteration against torch.linalg.eigvals, its stopping rule, and its start vectors."""

from __future__ import annotations

import doctest
import math

import pytest
import torch

import scrapl.warmup.power as power_mod
from scrapl.warmup.power import (
    ReferenceInitStream,
    dense_matvec,
    power_iteration,
    seeded_init,
)

F64 = torch.float64


def matrix_with_spectrum(eigenvalues: list[float], seed: int, symmetric: bool) -> torch.Tensor:
    """``Q diag(λ) Q⁻¹`` (non-symmetric) or ``Q diag(λ) Qᵀ`` with Q orthogonal (symmetric)."""
    gen = torch.Generator().manual_seed(seed)
    n = len(eigenvalues)
    if symmetric:
        Q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=F64))
        return Q @ torch.diag(torch.tensor(eigenvalues, dtype=F64)) @ Q.T
    Q = torch.eye(n, dtype=F64) + 0.3 * torch.randn(n, n, generator=gen, dtype=F64)
    return Q @ torch.diag(torch.tensor(eigenvalues, dtype=F64)) @ torch.linalg.inv(Q)


def top_eig(A: torch.Tensor) -> float:
    ev = torch.linalg.eigvals(A)
    top = ev[ev.abs().argmax()]
    assert abs(top.imag) < 1e-9
    return top.real.item()


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_eigvals_on_explicit_matrices(symmetric, sign, seed):
    n = 12
    gen = torch.Generator().manual_seed(100 + seed)
    rest = (torch.rand(n - 1, generator=gen, dtype=F64) * 3.0 - 1.5).tolist()  # |λ| ≤ 1.5
    A = matrix_with_spectrum([sign * 3.0, *rest], seed, symmetric)
    res = power_iteration(
        dense_matvec(A[None]), torch.ones(1, n, dtype=F64) / math.sqrt(n), n_iter=500, tol=1e-13
    )
    assert res.eigenvalues.item() == pytest.approx(top_eig(A), rel=1e-9)
    assert bool(res.converged.item())
    v = res.eigenvectors[0]
    torch.testing.assert_close(A @ v, res.eigenvalues.item() * v, atol=1e-6, rtol=0)


def test_random_dense_matrices_agree_with_eigvals():
    """Random non-symmetric Gaussian matrices, whatever their spectrum: checked whenever the
    dominant eigenvalue is real and separated (ratio ≤ 0.9), which the seeds below satisfy."""
    checked = 0
    for seed in range(20):
        gen = torch.Generator().manual_seed(seed)
        A = torch.randn(10, 10, generator=gen, dtype=F64)
        ev = torch.linalg.eigvals(A)
        mags = ev.abs().sort(descending=True).values
        top = ev[ev.abs().argmax()]
        if abs(top.imag) > 0 or mags[1] / mags[0] > 0.9:
            continue
        res = power_iteration(dense_matvec(A[None]), torch.ones(1, 10, dtype=F64), n_iter=2000, tol=1e-14)
        assert res.eigenvalues.item() == pytest.approx(top.real.item(), rel=1e-8)
        checked += 1
    assert checked >= 3


def test_batch_equals_one_by_one():
    """Running several operators together changes nothing for each of them: the same iteration
    count, and the same eigenvalue and error trace up to rounding. (Not bit for bit: a row's
    reductions can round differently with its position in memory; with MKL on an AMD EPYC the second
    row of a batch of 3 differed from the same row alone by 3e-16 in its error trace.)"""
    mats = torch.stack(
        [
            matrix_with_spectrum([s * 2.0, 1.0, -0.5, 0.25, 0.1], k, False)
            for k, s in enumerate([1.0, -1.0, 1.0])
        ]
    )
    init = torch.rand(3, 5, generator=torch.Generator().manual_seed(3), dtype=F64)
    batched = power_iteration(dense_matvec(mats), init, n_iter=60, tol=1e-6)
    for i in range(3):
        single = power_iteration(dense_matvec(mats[i : i + 1]), init[i : i + 1], n_iter=60, tol=1e-6)
        assert batched.n_iters[i] == single.n_iters[0]
        torch.testing.assert_close(batched.eigenvalues[i], single.eigenvalues[0], rtol=1e-12, atol=0)
        trace = batched.errors[: single.errors.shape[0], i]
        torch.testing.assert_close(trace, single.errors[:, 0], equal_nan=True, rtol=1e-8, atol=1e-14)


def test_matvec_only_sees_running_operators():
    mats = torch.stack(
        [
            torch.diag(torch.tensor([2.0, 0.0], dtype=F64)),  # converges at once
            torch.diag(torch.tensor([1.0, 0.5], dtype=F64)),
        ]
    )  # error ~ 4^-k
    seen = []

    def matvec(v, index):
        seen.append(index.tolist())
        return dense_matvec(mats)(v, index)

    res = power_iteration(matvec, torch.tensor([[1.0, 0.0], [1.0, 1.0]], dtype=F64), n_iter=6, tol=1e-6)
    assert seen[0] == [0, 1] and seen[1] == [0, 1] and all(s == [1] for s in seen[2:])
    assert res.n_iters.tolist() == [2, 6]
    assert res.converged.tolist() == [True, False]


def test_error_history_and_early_stop():
    A = matrix_with_spectrum([4.0, 1.0, 0.5, -0.2], 7, False)
    res = power_iteration(dense_matvec(A[None]), torch.ones(1, 4, dtype=F64), n_iter=100, tol=1e-8)
    err = res.errors[:, 0]
    n = int(res.n_iters.item())
    assert err.shape == (n,) and err[0] == 1.0  # λ_{-1} = 0
    assert err[-1] < 1e-8 <= err[-2]  # stops at the first error below tol
    assert n < 100 and bool(res.converged.item())
    # linear convergence at rate |λ2/λ1| = 1/4 (for the Rayleigh quotient of a non-normal A)
    assert (err[3 : n - 1] / err[2 : n - 2]).max() < 0.35


def test_tol_zero_runs_all_steps():
    A = torch.diag(torch.tensor([3.0, 1.0], dtype=F64))[None]
    res = power_iteration(dense_matvec(A), torch.ones(1, 2, dtype=F64), n_iter=7, tol=0.0)
    assert res.n_iters.item() == 7 and res.errors.shape == (7, 1)


def test_null_space_gives_zero():
    A = torch.zeros(1, 3, 3, dtype=F64)
    res = power_iteration(dense_matvec(A), torch.ones(1, 3, dtype=F64), n_iter=5)
    assert res.eigenvalues.item() == 0.0 and res.n_iters.item() == 1
    assert bool(res.converged.item())


def test_unnormalised_first_step_is_the_references():
    """With an un-normalised start the first estimate is v0ᵀ A v0 (scale ‖v0‖²), as the reference."""
    A = torch.diag(torch.tensor([2.0, 1.0], dtype=F64))[None]
    v0 = torch.tensor([[3.0, 4.0]], dtype=F64)
    res = power_iteration(dense_matvec(A), v0, n_iter=1)
    assert res.eigenvalues.item() == pytest.approx(2 * 9 + 16)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_iter": 0}, "n_iter"),
        ({"n_iter": 2.0}, "n_iter"),
        ({"tol": -1.0}, "tol"),
    ],
)
def test_argument_errors(kwargs, match):
    A = torch.eye(2, dtype=F64)[None]
    with pytest.raises((TypeError, ValueError), match=match):
        power_iteration(dense_matvec(A), torch.ones(1, 2, dtype=F64), **kwargs)
    with pytest.raises(ValueError, match="init"):
        power_iteration(dense_matvec(A), torch.ones(2, dtype=F64))


def test_seeded_init_is_private_deterministic_and_unit():
    state = torch.get_rng_state()
    a = seeded_init(3, 50, seed=5, key=(2, 0))
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is untouched
    assert torch.equal(a, seeded_init(3, 50, seed=5, key=(2, 0)))
    assert not torch.equal(a, seeded_init(3, 50, seed=5, key=(3, 0)))
    assert not torch.equal(a, seeded_init(3, 50, seed=6, key=(2, 0)))
    torch.testing.assert_close(torch.linalg.vector_norm(a, dim=1), torch.ones(3))
    assert a.dtype == torch.float32


@pytest.mark.parametrize("draw_normal", [True, False])
def test_reference_stream_replays_global_draws(draw_normal):
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    expected = []
    for dim in (7, 11):  # what the reference draws for one path with two groups, nθ = 2
        rows = []
        for _ in range(2):
            rows.append(torch.rand(dim))
            if draw_normal:
                torch.randn_like(rows[-1])
        expected.append(torch.stack(rows))
    after = torch.get_rng_state()
    stream = ReferenceInitStream(state, draw_normal=draw_normal)
    got = stream.draw(2, [7, 11])
    for e, g in zip(expected, got, strict=True):
        assert torch.equal(e, g)
    assert torch.equal(stream.final_state(), after)


def test_docstring_examples():
    assert doctest.testmod(power_mod, extraglobs={"torch": torch}).failed == 0
