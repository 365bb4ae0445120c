"""The curvature operator A_u (direct and factored engines) against dense Jacobians."""

from __future__ import annotations

import pytest
import torch
from test_warmup_toy import dense_operators, dominant, make_toy

from scrapl.warmup import WarmupProblem, aggregate_vals
from scrapl.warmup.curvature import CurvatureSettings, path_curvatures
from scrapl.warmup.factored import (
    FactoredCurvature,
    batch_theta_hessian,
    loss_reaches_params,
    theta_hessian,
)
from scrapl.warmup.hvp import DirectCurvature, WarmupBatch, flat_size
from scrapl.warmup.power import seeded_init

F64 = torch.float64
ENGINES = ["direct", "factored"]
# theta_batching applies to the factored engine's encoder products; the direct engine loops
COMBOS = [("direct", "loop"), ("factored", "loop"), ("factored", "vmap")]


def batches_of(toy):
    return [WarmupBatch(theta_fn_kwargs={"x": x}, target=x) for x in toy.batches]


def operator(
    toy, engine, *, path_idx=0, params=None, theta_batching="loop", multibatch=False, hessian="auto"
):
    params = toy.params if params is None else params
    batches = batches_of(toy)
    multibatch = multibatch or len(batches) > 1
    if engine == "direct":
        return DirectCurvature(
            path_loss=toy.path_loss,
            theta_fn=toy.theta_fn,
            synth_fn=toy.synth_fn,
            batches=batches,
            params=params,
            path_idx=path_idx,
            n_theta=toy.n_theta,
            multibatch=multibatch,
        )
    hessians = [
        batch_theta_hessian(
            path_loss=toy.path_loss,
            theta_fn=toy.theta_fn,
            synth_fn=toy.synth_fn,
            batch=b,
            params=toy.params,
            path_idx=path_idx,
            n_theta=toy.n_theta,
            hessian=hessian,
            keep_theta=not multibatch,
        )
        for b in batches
    ]
    return FactoredCurvature(
        theta_fn=toy.theta_fn,
        batches=batches,
        params=params,
        hessians=hessians,
        theta_batching=theta_batching,
    )


def problem_of(toy):
    return WarmupProblem.build(
        toy.path_loss,
        toy.theta_fn,
        toy.synth_fn,
        toy.theta_fn_kwargs,
        toy.params,
        n_paths=toy.n_paths,
        n_theta=toy.n_theta,
    )


def random_rows(k, n, seed=0):
    return torch.randn(k, n, generator=torch.Generator().manual_seed(seed), dtype=F64)


@pytest.mark.parametrize("engine, theta_batching", COMBOS)
@pytest.mark.parametrize("path_idx", [0, 3])
def test_matvec_matches_dense_jacobian(engine, theta_batching, path_idx):
    toy = make_toy()
    A = dense_operators(toy, path_idx)  # (nθ, n, n)
    op = operator(toy, engine, path_idx=path_idx, theta_batching=theta_batching)
    index = torch.tensor([2, 0, 1, 2])
    V = random_rows(4, op.dim)
    expected = torch.einsum("kij,kj->ki", A[index], V)
    torch.testing.assert_close(op(V, index), expected, rtol=1e-10, atol=1e-12)


def test_vmap_over_theta_equals_loop():
    toy = make_toy(n_theta=4)
    V, index = random_rows(4, flat_size(toy.params)), torch.arange(4)
    looped = operator(toy, "factored", theta_batching="loop")(V, index)
    batched = operator(toy, "factored", theta_batching="vmap")(V, index)
    torch.testing.assert_close(batched, looped, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("engine, theta_batching", COMBOS)
def test_multibatch_sums_batches(engine, theta_batching):
    """Two copies of one batch give exactly twice the single-batch operator (a sum, Q14)."""
    toy = make_toy()
    twice = make_toy()
    twice.batches = [toy.batches[0], toy.batches[0].clone()]
    V, index = random_rows(3, flat_size(toy.params)), torch.arange(3)
    single = operator(toy, engine, theta_batching=theta_batching)(V, index)
    doubled = operator(twice, engine, theta_batching=theta_batching)(V, index)
    torch.testing.assert_close(doubled, 2 * single, rtol=1e-12, atol=1e-13)
    forced = operator(toy, engine, theta_batching=theta_batching, multibatch=True)(V, index)
    torch.testing.assert_close(forced, single, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("engine", ENGINES)
def test_two_different_batches_match_dense(engine):
    toy = make_toy(n_batches=2)
    A = dense_operators(toy, 2)
    V, index = random_rows(3, flat_size(toy.params)), torch.arange(3)
    torch.testing.assert_close(
        operator(toy, engine, path_idx=2)(V, index), torch.einsum("kij,kj->ki", A, V), rtol=1e-10, atol=1e-12
    )


def test_theta_hessian_auto_detects_coupled_examples():
    """A loss that couples the examples has a full θ-Hessian: "auto" must notice, "block" not."""
    toy = make_toy(coupled=True)
    A = dense_operators(toy, 1)
    V, index = random_rows(3, flat_size(toy.params)), torch.arange(3)
    expected = torch.einsum("kij,kj->ki", A, V)
    auto = operator(toy, "factored", path_idx=1, hessian="auto")
    assert auto.hessians[0].hessian.full is not None
    torch.testing.assert_close(auto(V, index), expected, rtol=1e-10, atol=1e-12)
    full = operator(toy, "factored", path_idx=1, hessian="full", theta_batching="vmap")
    torch.testing.assert_close(full(V, index), expected, rtol=1e-10, atol=1e-12)
    block = operator(toy, "factored", path_idx=1, hessian="block")
    assert (block(V, index) - expected).abs().max() > 1e-3 * expected.abs().max()


def test_theta_hessian_blocks_equal_full_on_separable_loss():
    toy = make_toy()
    theta = toy.theta_fn(**toy.theta_fn_kwargs[0]).detach().requires_grad_()
    loss = toy.path_loss(toy.synth_fn(theta), toy.batches[0], 0)
    c = torch.autograd.grad(loss, theta, create_graph=True)[0]
    blocks = theta_hessian(c, theta, mode="block").blocks
    full = theta_hessian(c, theta, mode="full").full  # (B, nθ, B, nθ)
    for b in range(theta.shape[0]):
        torch.testing.assert_close(full[b, :, b, :], blocks[b], rtol=1e-12, atol=1e-14)
    off = full.clone()
    for b in range(theta.shape[0]):
        off[b, :, b, :] = 0
    assert off.abs().max() < 1e-12
    assert theta_hessian(c, theta, mode="auto").blocks is not None


def test_factored_refuses_params_that_bypass_theta():
    toy = make_toy(direct_weight=True)
    with pytest.raises(ValueError, match="engine='direct'"):
        operator(toy, "factored")
    A = dense_operators(toy, 0)  # the direct engine handles it
    V, index = random_rows(3, flat_size(toy.params)), torch.arange(3)
    torch.testing.assert_close(
        operator(toy, "direct")(V, index), torch.einsum("kij,kj->ki", A, V), rtol=1e-10, atol=1e-12
    )


def test_loss_reaches_params_graph_walk():
    w = torch.ones(3, requires_grad=True)
    other = torch.ones(3, requires_grad=True)
    assert loss_reaches_params((w * 2).sum(), [w])
    assert not loss_reaches_params((other * 2).sum(), [w])


@pytest.mark.parametrize("engine", ENGINES)
def test_warmup_values_within_one_percent_of_dense(engine):
    """path_curvatures, with enough iterations, gives |λ_max(A_u)| of the dense matrices."""
    toy = make_toy()
    checked = 0
    for p in range(toy.n_paths):
        A = dense_operators(toy, p)
        init = [seeded_init(toy.n_theta, flat_size(toy.params), seed=0, key=(p, 0), dtype=F64)]
        vals, results = path_curvatures(
            problem_of(toy),
            CurvatureSettings(engine=engine, n_iter=400, tol=1e-10),
            groups=[toy.params],
            path_idx=p,
            init_vectors=init,
        )
        for u in range(toy.n_theta):
            ev = torch.linalg.eigvals(A[u]).abs().sort(descending=True).values
            if ev[1] > 0.95 * ev[0]:  # no dominant eigenvalue: power iteration is not defined
                continue
            assert vals[0, u].item() == pytest.approx(dominant(A[u]).abs().item(), rel=1e-2)
            assert bool(results[0].converged[u])
            checked += 1
    assert checked >= 8


@pytest.mark.parametrize("agg", ["mean", "max", "med"])
def test_per_tensor_groups_use_diagonal_blocks(agg):
    """agg != 'none': one operator per parameter tensor = the diagonal block of A_u."""
    toy = make_toy()
    p = 1
    groups = [[t] for t in toy.params]
    init = [
        seeded_init(toy.n_theta, t.numel(), seed=0, key=(p, g), dtype=F64) for g, t in enumerate(toy.params)
    ]
    vals, _ = path_curvatures(
        problem_of(toy),
        CurvatureSettings(engine="factored", n_iter=500, tol=1e-12),
        groups=groups,
        path_idx=p,
        init_vectors=init,
    )
    assert vals.shape == (len(groups), toy.n_theta)
    for g, t in enumerate(toy.params):
        A = dense_operators(toy, p, params=[t])
        for u in range(toy.n_theta):
            ev = torch.linalg.eigvals(A[u]).abs().sort(descending=True).values
            if len(ev) > 1 and ev[1] > 0.95 * ev[0]:
                continue
            assert vals[g, u].item() == pytest.approx(ev[0].item(), rel=1e-2)
    reduced = aggregate_vals(vals, agg)
    expected = {
        "mean": vals.mean(0),
        "max": vals.max(0).values,
        "med": vals.sort(0).values[(len(groups) - 1) // 2],
    }[agg]  # lower middle
    torch.testing.assert_close(reduced, expected)


def test_engines_agree_on_float32():
    toy = make_toy(dtype=torch.float32)
    V, index = random_rows(3, flat_size(toy.params)).float(), torch.arange(3)
    d = operator(toy, "direct")(V, index)
    f = operator(toy, "factored")(V, index)
    torch.testing.assert_close(f, d, rtol=1e-4, atol=1e-5)


def test_theta_hessian_auto_keeps_blocks_despite_float32_rounding():
    """The demo's float32 synth + JTFS path loss is exactly per-example, but its double backward
    is only accurate to tens of per cent: "auto" must probe the structure (exact zeros off the
    probed example), not the values, and keep the blocks (the full matrix costs B times more)."""
    from scrapl.demo import run as demo
    from scrapl.demo.config import preset
    from scrapl.warmup.factored import _block_probe

    cfg = preset("quick", seed=0)
    synth, loss = demo.build_synth(cfg, "cpu"), demo.build_loss(cfg, "cpu")
    gen = torch.Generator().manual_seed(0)
    B = 4
    x = synth(torch.rand(B, 2, generator=gen), synth.random_shifts(B, generator=gen)).reshape(B, -1)
    noises = []
    for path in range(6):
        theta = torch.rand(B, 2, generator=gen).requires_grad_()
        x_hat = synth(theta, synth.random_shifts(B, generator=gen)).reshape(B, -1)
        (c,) = torch.autograd.grad(loss.calc_dist(x_hat, x, path), theta, create_graph=True)
        blocks = theta_hessian(c, theta, mode="block").blocks
        coupling, noise, informative = _block_probe(c, theta, blocks, None)
        assert coupling == 0.0 and informative
        hess = theta_hessian(c, theta, mode="auto")
        assert hess.blocks is not None and hess.probed
        noises.append(noise)
    assert max(noises) > 0.1  # a comparison of values (the former check, tolerance 1e-3) fails


def test_theta_hessian_auto_detects_neighbour_coupling():
    """Coupling between neighbouring examples only (no batch statistic) is seen from any probe."""
    theta = torch.rand(5, 2, dtype=F64, requires_grad=True)
    loss = (theta**3).sum() + (theta * theta.roll(1, 0)).square().sum()
    (c,) = torch.autograd.grad(loss, theta, create_graph=True)
    hess = theta_hessian(c, theta, mode="auto")
    assert hess.full is not None and hess.probed
    dense = torch.autograd.functional.hessian(
        lambda t: (t**3).sum() + (t * t.roll(1, 0)).square().sum(), theta.detach()
    )
    torch.testing.assert_close(hess.full, dense, rtol=1e-12, atol=1e-12)
