"""Arnoldi iteration: dominant eigenvalues of batched operators from the Krylov subspace."""

from __future__ import annotations

import pytest
import torch

from scrapl.warmup.arnoldi import arnoldi_iteration
from scrapl.warmup.power import dense_matvec, power_iteration

F64 = torch.float64


def _with_spectrum(eigs: torch.Tensor, seed: int) -> torch.Tensor:
    """A non-symmetric real matrix ``S diag(eigs) S⁻¹`` (real eigenvalues ``eigs``)."""
    gen = torch.Generator().manual_seed(seed)
    S = torch.randn(len(eigs), len(eigs), generator=gen, dtype=F64) + 3 * torch.eye(len(eigs), dtype=F64)
    return S @ torch.diag(eigs) @ torch.linalg.inv(S)


def _counting(matrices: torch.Tensor):
    calls: list[list[int]] = []
    base = dense_matvec(matrices)

    def matvec(vectors, index):
        calls.append(index.tolist())
        return base(vectors, index)

    return matvec, calls


def test_matches_the_dominant_eigenvalue_of_dense_matrices():
    gen = torch.Generator().manual_seed(0)
    mats = torch.randn(4, 30, 30, generator=gen, dtype=F64)
    mats[:, 0, 0] += torch.tensor([9.0, -9.0, 12.0, -15.0], dtype=F64)  # a real dominant eigenvalue
    res = arnoldi_iteration(
        dense_matvec(mats), torch.randn(4, 30, generator=gen, dtype=F64), n_iter=30, tol=1e-12
    )
    for i in range(4):
        ev = torch.linalg.eigvals(mats[i])
        top = ev[ev.abs().argmax()]
        assert abs(top.imag.item()) < 1e-9
        assert res.eigenvalues[i].item() == pytest.approx(top.real.item(), rel=1e-10)
        x = res.eigenvectors[i]
        assert torch.linalg.vector_norm(x).item() == pytest.approx(1.0, rel=1e-12)
        residual = mats[i] @ x - res.eigenvalues[i] * x
        assert torch.linalg.vector_norm(residual).item() < 1e-8 * abs(top)
    assert bool(res.converged.all())


def test_converges_where_power_iteration_crawls():
    """λ₂/λ₁ = −0.98: after 200 products power iteration still reads 9.72 for 10; Arnoldi has 10
    to 1e-8 within 25 products, and at tolerance 1e-3 (the residual) to 1e-3 within 12."""
    eigs = torch.cat([torch.tensor([10.0, -9.8, 9.6], dtype=F64), torch.linspace(-5, 5, 37, dtype=F64)])
    A = dense_matvec(_with_spectrum(eigs, seed=1).unsqueeze(0))
    v0 = torch.randn(1, 40, generator=torch.Generator().manual_seed(2), dtype=F64)
    arn = arnoldi_iteration(A, v0, n_iter=25, tol=1e-10)
    assert arn.eigenvalues.item() == pytest.approx(10.0, rel=1e-8)
    assert bool(arn.converged.item())
    slow = power_iteration(A, v0, n_iter=200, tol=1e-3)
    assert not bool(slow.converged.item()) and abs(slow.eigenvalues.item() - 10.0) > 0.1
    loose = arnoldi_iteration(A, v0, n_iter=200, tol=1e-3)
    assert loose.eigenvalues.item() == pytest.approx(10.0, rel=1e-3)
    assert loose.n_iters.item() <= 12


def test_complex_dominant_pair_gives_its_modulus():
    rot = torch.tensor([[0.0, -3.0], [3.0, 0.0]], dtype=F64)  # eigenvalues ±3i
    A = torch.block_diag(rot, torch.diag(torch.tensor([1.0, -0.5, 0.2], dtype=F64))).unsqueeze(0)
    res = arnoldi_iteration(dense_matvec(A), torch.ones(1, 5, dtype=F64), n_iter=10, tol=1e-12)
    assert res.eigenvalues.item() == pytest.approx(3.0, rel=1e-10)
    assert bool(res.converged.item())


def test_rows_stop_independently_and_only_active_rows_are_applied():
    eigen_start = torch.zeros(1, 6, dtype=F64)
    eigen_start[0, 2] = 1.0  # an eigenvector of the diagonal matrix: exact after one product
    mats = torch.stack(
        [torch.diag(torch.arange(1.0, 7.0, dtype=F64)), _with_spectrum(torch.arange(1.0, 7.0, dtype=F64), 3)]
    )
    init = torch.cat([eigen_start, torch.ones(1, 6, dtype=F64)])
    matvec, calls = _counting(mats)
    res = arnoldi_iteration(matvec, init, n_iter=20, tol=1e-12)
    assert res.n_iters.tolist()[0] == 1 and res.eigenvalues[0].item() == pytest.approx(3.0, rel=1e-14)
    assert calls[0] == [0, 1] and all(c == [1] for c in calls[1:])
    assert res.n_iters[1].item() <= 6  # the Krylov space of a 6x6 matrix is exhausted by then
    assert res.eigenvalues[1].item() == pytest.approx(6.0, rel=1e-9)
    assert res.errors.shape == (len(calls), 2) and torch.isnan(res.errors[1:, 0]).all()


def test_float32_operator_of_a_large_size():
    gen = torch.Generator().manual_seed(4)
    n = 2000
    U = torch.linalg.qr(torch.randn(n, 8, generator=gen, dtype=F64)).Q
    low_rank = U @ torch.diag(torch.tensor([50.0, 49.0, 30, 20, 10, 5, 2, 1], dtype=F64)) @ U.T

    def matvec(vectors, index):
        return (vectors.double() @ low_rank.T + 0.1 * vectors.double()).float()

    res = arnoldi_iteration(matvec, torch.randn(1, n, generator=gen), n_iter=20, tol=1e-4)
    assert res.eigenvalues.item() == pytest.approx(50.1, rel=1e-4)
    assert res.eigenvectors.dtype == torch.float32


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"init": torch.ones(3)}, ValueError, "init must be a floating"),
        ({"init": torch.ones(2, 3, dtype=torch.long)}, ValueError, "init must be a floating"),
        ({"init": torch.zeros(2, 3)}, ValueError, "zero vector"),
        ({"n_iter": 0}, ValueError, "n_iter must be >= 1"),
        ({"n_iter": True}, TypeError, "n_iter"),
        ({"tol": -1.0}, ValueError, "tol must be"),
        ({"tol": float("nan")}, ValueError, "tol must be"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    args = {"init": torch.ones(2, 3), "n_iter": 5, "tol": 1e-4} | kwargs
    with pytest.raises(exc, match=match):
        arnoldi_iteration(dense_matvec(torch.eye(3).expand(2, 3, 3)), **args)
